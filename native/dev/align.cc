// Dev-addon bindings of the align stage (never shipped), all under `alignDev`:
//   alignBatchGeneral(alignTables, studentIds[], teacherIds[], opts)    the shipped kernel's general
//       path forced for every pair (AlignPairGeneral: offsets, byte streams, ByteDiff, SyncCuts), which
//       AlignPair takes only when its fused equal-stream pass does not finish
//   alignBatchReference(alignTables, studentIds[], teacherIds[], opts)  AlignPairReference per pair
//       (ids checked first); small inputs when the streams differ (ByteDiffReference is O(n*m))
//     both take the arguments and give the result of the shipped alignBatch (align/binding.h);
//     alignTables is an AlignTables of THIS addon (a native object does not cross addons)
//   byteDiffReference(a, b, truncated?) -> { runs, end, x, y, edits }   the O(n*m) dynamic program
#include "align/align_reference.h"
#include "align/binding.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace align {
namespace {

// AlignPairReference in AlignBatch's per-pair signature, ids checked as AlignPair checks them.
void ReferencePair(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
                   const AlignOptions& opt, TeacherIds teacher, AlignScratch&, PairResult& out,
                   const char* sName, const char* tName) {
  CheckIds(*pt.student, s, size_t(n), sName);
  CheckIds(*pt.teacher, t, size_t(m), tName);
  AlignPairReference(*pt.student, s, n, *pt.teacher, t, m, opt, teacher, out);
}

Napi::Value JsAlignBatchGeneral(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value { return AlignBatchCall(info, AlignPairGeneral); });
}

Napi::Value JsAlignBatchReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value { return AlignBatchCall(info, ReferencePair); });
}

Napi::Value JsByteDiffReference(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    auto a = TypedArg<uint8_t>(info[0], "a");
    auto b = TypedArg<uint8_t>(info[1], "b");
    XOPD_CHECK(a.size < size_t(INT32_MAX) && b.size < size_t(INT32_MAX), "E_TOO_LONG", "inputs must be under 2^31 bytes");
    const bool truncated = info.Length() > 2 && info[2].ToBoolean().Value();
    DiffResult r;
    ByteDiffReference(a.data, int32_t(a.size), b.data, int32_t(b.size), truncated, r);
    return DiffResultObject(info.Env(), r);
  });
}

Registration reg("dev.align", [](Napi::Env env, Napi::Object exports) {
  Napi::Object dev = Napi::Object::New(env);
  dev.Set("alignBatchGeneral", Napi::Function::New(env, JsAlignBatchGeneral, "alignBatchGeneral"));
  dev.Set("alignBatchReference", Napi::Function::New(env, JsAlignBatchReference, "alignBatchReference"));
  dev.Set("byteDiffReference", Napi::Function::New(env, JsByteDiffReference, "byteDiffReference"));
  exports.Set("alignDev", dev);
});

}  // namespace
}  // namespace align
}  // namespace xopd
