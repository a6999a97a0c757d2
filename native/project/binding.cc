// JS binding of the sparse span projection (span_projection.h): unpack, call, pack.
//   new SpanProjector(studentTable, teacherTable, studentVocab | null, teacherEos, studentEndOfTurn)
//     -> the projector's tables, built once; it keeps both TokenTable objects alive.
//   projector.project({studentIds, teacherIds, studentStart, studentEnd, teacherStart, teacherEnd,
//     flags, logprobs, topkIds, topkLogprobs, k, includeFlags, device, projection: 'first' | 'prefix'})
//     -> { rowPtr, ids, probs, tail, mask }, and lo, hi for 'prefix' (span_projection.h: the format)
//   projector.byteOrder  Int32Array: the emittable student ids sorted by bytes (one array per projector)
//   projector.trieNodes, trieBytes, outputSize
#include <algorithm>
#include <memory>
#include <string>

#include "common/binding.h"
#include "project/span_projection.h"
#include "tokenizer/binding.h"

namespace xopd {
namespace project {
namespace {

class SpanProjectorWrap : public Napi::ObjectWrap<SpanProjectorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "SpanProjector",
                                    {InstanceMethod("project", &SpanProjectorWrap::Project),
                                     InstanceAccessor("trieNodes", &SpanProjectorWrap::TrieNodes, nullptr),
                                     InstanceAccessor("trieBytes", &SpanProjectorWrap::TrieBytes, nullptr),
                                     InstanceAccessor("outputSize", &SpanProjectorWrap::OutputSize, nullptr),
                                     InstanceAccessor("byteOrder", &SpanProjectorWrap::ByteOrder, nullptr)});
    exports.Set("SpanProjector", fn);
  }

  explicit SpanProjectorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SpanProjectorWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      const TokenTable& st = UnwrapTokenTable(info[0], "studentTable");
      const TokenTable& tt = UnwrapTokenTable(info[1], "teacherTable");
      // Keep the tables' JS objects alive as long as this projector reads them.
      studentRef_ = Napi::Persistent(info[0].As<Napi::Object>());
      teacherRef_ = Napi::Persistent(info[1].As<Napi::Object>());
      auto studentVocab = OptionalTypedArg<int32_t>(info[2], "studentVocab");
      auto teacherEos = TypedArg<int32_t>(info[3], "teacherEos");
      const int32_t studentEot = static_cast<int32_t>(IntArg(info[4], "studentEndOfTurn"));
      BuildSpanTables(st, tt, studentVocab.data, studentVocab.size, teacherEos.data, teacherEos.size, studentEot, tables_);
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value TrieNodes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(tables_.trie.token.size())); }
  Napi::Value TrieBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(tables_.trie.Bytes())); }
  Napi::Value OutputSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), tables_.outputSize); }
  // One JS array for the projector's life: every call's targets refer to the same byte order.
  Napi::Value ByteOrder(const Napi::CallbackInfo& info) {
    if (byteOrderRef_.IsEmpty()) {
      const std::vector<int32_t>& order = tables_.trie.order;
      Napi::Int32Array a = Napi::Int32Array::New(info.Env(), order.size());
      std::copy(order.begin(), order.end(), a.Data());
      byteOrderRef_ = Napi::Persistent(a);
    }
    return byteOrderRef_.Value();
  }

  Napi::Value Project(const Napi::CallbackInfo& info) {
    return Guard(info, [&]() -> Napi::Value {
      Napi::Env env = info.Env();
      XOPD_CHECK(info.Length() >= 1 && info[0].IsObject(), "E_ARG_TYPE", "project expects an options object");
      Napi::Object o = info[0].As<Napi::Object>();
      auto sIds = TypedArg<int32_t>(o.Get("studentIds"), "studentIds");
      auto tIds = TypedArg<int32_t>(o.Get("teacherIds"), "teacherIds");
      auto cs0 = TypedArg<int32_t>(o.Get("studentStart"), "alignment.studentStart");
      auto cs1 = TypedArg<int32_t>(o.Get("studentEnd"), "alignment.studentEnd");
      auto ct0 = TypedArg<int32_t>(o.Get("teacherStart"), "alignment.teacherStart");
      auto ct1 = TypedArg<int32_t>(o.Get("teacherEnd"), "alignment.teacherEnd");
      auto flags = TypedArg<uint8_t>(o.Get("flags"), "alignment.flags");
      auto lp = TypedArg<float>(o.Get("logprobs"), "teacher.logprobs");
      auto topIds = TypedArg<int32_t>(o.Get("topkIds"), "teacher.topkIds");
      auto topLp = TypedArg<float>(o.Get("topkLogprobs"), "teacher.topkLogprobs");
      const int64_t K = IntArg(o.Get("k"), "teacher.k");
      const int64_t include = o.Get("includeFlags").IsUndefined() ? 0 : IntArg(o.Get("includeFlags"), "includeFlags");
      const Device device = ParseDevice(o.Get("device").IsString() ? o.Get("device").As<Napi::String>().Utf8Value() : "cpu");
      const std::string projection = o.Get("projection").IsString() ? o.Get("projection").As<Napi::String>().Utf8Value() : "prefix";
      XOPD_CHECK(projection == "first" || projection == "prefix", "E_ARG_VALUE", "projection must be 'first' or 'prefix'");
      const size_t m = tIds.size, C = cs0.size;
      XOPD_CHECK(K >= 0 && K <= 4096, "E_ARG_RANGE", "teacher.k must be in [0, 4096]");
      XOPD_CHECK(lp.size == m, "E_ARG_SHAPE", "teacher.logprobs must have one entry per teacher id");
      XOPD_CHECK(topIds.size == m * static_cast<size_t>(K) && topLp.size == topIds.size, "E_ARG_SHAPE",
                 "teacher.topkIds and teacher.topkLogprobs must have teacherIds.length * k entries");
      XOPD_CHECK(cs1.size == C && ct0.size == C && ct1.size == C && flags.size == C, "E_ARG_SHAPE",
                 "alignment arrays must have chunkCount entries");
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
      in.includeFlags = static_cast<uint8_t>(include);
      in.projection = projection == "first" ? Projection::kFirst : Projection::kPrefix;

      CheckProjectInput(tables_, in);
      RowPlan plan;
      PlanRows(tables_, in, plan);
      RowSlots rows;
      RunRows(tables_, in, plan, device, rows);
      const size_t n = in.n, nnz = static_cast<size_t>(CsrEntries(rows));
      Napi::Int32Array rowPtr = Napi::Int32Array::New(env, n + 1), ids = Napi::Int32Array::New(env, nnz);
      Napi::Float32Array probs = Napi::Float32Array::New(env, nnz), tail = Napi::Float32Array::New(env, n);
      Napi::Uint8Array mask = Napi::Uint8Array::New(env, n);
      CsrView view{rowPtr.Data(), ids.Data(), probs.Data(), tail.Data(), mask.Data()};
      Napi::Object out = Napi::Object::New(env);
      if (in.projection == Projection::kPrefix) {
        Napi::Int32Array lo = Napi::Int32Array::New(env, nnz), hi = Napi::Int32Array::New(env, nnz);
        view.lo = lo.Data();
        view.hi = hi.Data();
        out.Set("lo", lo);
        out.Set("hi", hi);
      }
      WriteCsr(tables_, plan, rows, view);
      out.Set("rowPtr", rowPtr);
      out.Set("ids", ids);
      out.Set("probs", probs);
      out.Set("tail", tail);
      out.Set("mask", mask);
      return out;
    });
  }

  Napi::ObjectReference studentRef_, teacherRef_;
  Napi::Reference<Napi::Int32Array> byteOrderRef_;
  SpanTables tables_;
};

Registration reg("project", SpanProjectorWrap::Init);

}  // namespace
}  // namespace project
}  // namespace xopd
