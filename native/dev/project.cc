// Dev-addon binding of the project stage (never shipped):
//   spanProjectionReference({studentTable, teacherTable, studentVocab?, teacherEos, studentEndOfTurn,
//     studentIds, teacherIds, studentStart, studentEnd, teacherStart, teacherEnd, flags,
//     logprobs, topkIds, topkLogprobs, k, includeFlags, projection: 'first' | 'prefix'})
//     -> { rowPtr, bucketPtr, members, probs f64, tail f64, mask }  (explicit buckets: span_projection_reference.h)
// The tables are TokenTable objects of THIS addon (a native object does not cross addons).
#include <string>

#include "common/binding.h"
#include "project/span_projection_reference.h"
#include "tokenizer/binding.h"

namespace xopd {
namespace project {
namespace {

Napi::Value JsSpanProjectionReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = info[0].As<Napi::Object>();
    const TokenTable& st = UnwrapTokenTable(o.Get("studentTable"), "studentTable");
    const TokenTable& tt = UnwrapTokenTable(o.Get("teacherTable"), "teacherTable");
    auto sIds = TypedArg<int32_t>(o.Get("studentIds"), "studentIds");
    auto tIds = TypedArg<int32_t>(o.Get("teacherIds"), "teacherIds");
    auto cs0 = TypedArg<int32_t>(o.Get("studentStart"), "studentStart");
    auto cs1 = TypedArg<int32_t>(o.Get("studentEnd"), "studentEnd");
    auto ct0 = TypedArg<int32_t>(o.Get("teacherStart"), "teacherStart");
    auto ct1 = TypedArg<int32_t>(o.Get("teacherEnd"), "teacherEnd");
    auto flags = TypedArg<uint8_t>(o.Get("flags"), "flags");
    auto lp = TypedArg<float>(o.Get("logprobs"), "logprobs");
    auto topIds = TypedArg<int32_t>(o.Get("topkIds"), "topkIds");
    auto topLp = TypedArg<float>(o.Get("topkLogprobs"), "topkLogprobs");
    auto teos = TypedArg<int32_t>(o.Get("teacherEos"), "teacherEos");
    auto studentVocab = OptionalTypedArg<int32_t>(o.Get("studentVocab"), "studentVocab");
    const int64_t K = IntArg(o.Get("k"), "k");
    const size_t C = cs0.size, m = tIds.size;
    XOPD_CHECK(K >= 0 && K <= 4096 && lp.size == m && topIds.size == m * static_cast<size_t>(K) && topLp.size == topIds.size,
               "E_ARG_SHAPE", "teacher arrays must have m and m * k entries");
    XOPD_CHECK(cs1.size == C && ct0.size == C && ct1.size == C && flags.size == C, "E_ARG_SHAPE", "alignment arrays must have chunkCount entries");
    CheckIds(st, sIds.data, sIds.size, "studentIds");
    CheckIds(tt, tIds.data, m, "teacherIds");
    CheckIds(tt, topIds.data, topIds.size, "topkIds");
    ProjectInput in;
    in.studentIds = sIds.data;
    in.n = sIds.size;
    in.teacherIds = tIds.data;
    in.m = m;
    in.studentStart = cs0.data;
    in.studentEnd = cs1.data;
    in.teacherStart = ct0.data;
    in.teacherEnd = ct1.data;
    in.flags = flags.data;
    in.chunks = C;
    in.logprobs = lp.data;
    in.topkIds = topIds.data;
    in.topkLogprobs = topLp.data;
    in.K = static_cast<int32_t>(K);
    in.includeFlags = static_cast<uint8_t>(IntArg(o.Get("includeFlags"), "includeFlags"));
    const std::string projection = o.Get("projection").IsString() ? o.Get("projection").As<Napi::String>().Utf8Value() : "prefix";
    XOPD_CHECK(projection == "first" || projection == "prefix", "E_ARG_VALUE", "projection must be 'first' or 'prefix'");
    in.projection = projection == "first" ? Projection::kFirst : Projection::kPrefix;
    ReferenceCsr r;
    SpanProjectionReference(st, tt, studentVocab.data, studentVocab.size, teos.data, teos.size,
                            static_cast<int32_t>(IntArg(o.Get("studentEndOfTurn"), "studentEndOfTurn")), in, r);
    Napi::Object res = Napi::Object::New(env);
    res.Set("rowPtr", CopyOut(env, r.rowPtr.data(), r.rowPtr.size()));
    res.Set("bucketPtr", CopyOut(env, r.bucketPtr.data(), r.bucketPtr.size()));
    res.Set("members", CopyOut(env, r.members.data(), r.members.size()));
    res.Set("probs", CopyOut(env, r.probs.data(), r.probs.size()));
    res.Set("tail", CopyOut(env, r.tail.data(), r.tail.size()));
    res.Set("mask", CopyOut(env, r.mask.data(), r.mask.size()));
    return res;
  });
}

Registration reg("dev.project", [](Napi::Env env, Napi::Object exports) {
  exports.Set("spanProjectionReference", Napi::Function::New(env, JsSpanProjectionReference, "spanProjectionReference"));
});

}  // namespace
}  // namespace project
}  // namespace xopd
