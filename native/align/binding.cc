// JS bindings of the aligner:
//   new AlignTables(studentTable, teacherTable) -> per-id facts of the pair, built once
//   alignBatch(alignTables, studentIds[], teacherIds[], opts) -> flat chunk arrays
//     pairs run on all cores (ParallelFor, one pair at a time per worker, dynamic order);
//     opts: { maxChunkTokens, studentEos, teacherEos, teacherIds? (Uint8Array, one TeacherIds per
//             pair: 0 infer, 1 complete, 2 truncated), anchorBytes?, maxEdits?, workPerByte?,
//             workBase? }
//   byteDiff(a, b, opts) -> { runs (x, y, len triples), end, x, y, edits }   (tests and tools)
//     opts: { truncated?, anchorBytes?, maxEdits?, workPerByte?, workBase? }
// The plain references and the forced general path are test tools of the dev addon
// (native/dev/align.cc); `reference` or `generalPath` here is refused (E_ARG_VALUE), never ignored.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "align/binding.h"
#include "common/threads.h"
#include "tokenizer/binding.h"

namespace xopd {
namespace align {
namespace {

bool Has(const Napi::Object& o, const char* key) {
  return o.Has(key) && !o.Get(key).IsUndefined() && !o.Get(key).IsNull();
}

void ReadDiffLimits(const Napi::Object& o, DiffLimits& lim) {
  if (Has(o, "anchorBytes")) lim.anchorBytes = int32_t(IntArg(o.Get("anchorBytes"), "anchorBytes"));
  if (Has(o, "maxEdits")) lim.maxEdits = int32_t(IntArg(o.Get("maxEdits"), "maxEdits"));
  if (Has(o, "workPerByte")) lim.workPerByte = IntArg(o.Get("workPerByte"), "workPerByte");
  if (Has(o, "workBase")) lim.workBase = IntArg(o.Get("workBase"), "workBase");
  XOPD_CHECK(lim.anchorBytes >= 1 && lim.anchorBytes <= 4096, "E_ARG_RANGE", "anchorBytes must be in [1, 4096]");
  XOPD_CHECK(lim.maxEdits >= 0 && lim.maxEdits <= 4096, "E_ARG_RANGE", "maxEdits must be in [0, 4096] (its search memory grows as maxEdits^2)");
  XOPD_CHECK(lim.workPerByte >= 0 && lim.workPerByte <= 1 << 20, "E_ARG_RANGE", "workPerByte must be in [0, 2^20]");
  XOPD_CHECK(lim.workBase >= 0 && lim.workBase <= (int64_t(1) << 40), "E_ARG_RANGE", "workBase must be in [0, 2^40]");
}

// The switches the aligner's tests once passed to the shipped addon: refused, so a stale caller
// learns where they went instead of silently getting the optimised path.
void RefuseTestSwitches(const Napi::Object& o, const char* fn) {
  for (const char* key : {"reference", "generalPath"})
    XOPD_CHECK(!Has(o, key), "E_ARG_VALUE",
               std::string(fn) + ": '" + key + "' is not an option; the plain reference and the forced general " +
                   "path are test tools of the dev addon (dev/align-reference.ts), not of the shipped one");
}

std::vector<int32_t> SortedIds(const Napi::Object& o, const char* key) {
  std::vector<int32_t> ids;
  if (!Has(o, key)) return ids;
  auto v = TypedArg<int32_t>(o.Get(key), key);
  ids.assign(v.data, v.data + v.size);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<View<int32_t>> IdList(const Napi::Value& v, const char* name) {
  XOPD_CHECK(v.IsArray(), "E_ARG_TYPE", std::string(name) + " must be an array of Int32Array");
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<View<int32_t>> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    std::string item = std::string(name) + "[" + std::to_string(k) + "]";
    out[k] = TypedArg<int32_t>(arr.Get(k), item.c_str());
  }
  return out;
}

// new AlignTables(studentTable, teacherTable): the per-id facts of a table pair (PairTables), built
// once; it keeps both TokenTable objects alive.
class AlignTablesWrap : public Napi::ObjectWrap<AlignTablesWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "AlignTables",
                                    {InstanceAccessor("sameBytesIds", &AlignTablesWrap::JsSameBytes, nullptr)});
    ConstructorOf(env, "AlignTables") = Napi::Persistent(fn);
    exports.Set("AlignTables", fn);
  }

  explicit AlignTablesWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AlignTablesWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      const TokenTable& ts = UnwrapTokenTable(info[0], "studentTable");
      const TokenTable& tt = UnwrapTokenTable(info[1], "teacherTable");
      refS_ = Napi::Persistent(info[0].As<Napi::Object>());
      refT_ = Napi::Persistent(info[1].As<Napi::Object>());
      tables_.Build(ts, tt);
      return info.Env().Undefined();
    });
  }

  static const PairTables& TablesOf(const Napi::Value& v) {
    if (!IsInstanceOf(v, "AlignTables"))
      throw Error("E_ARG_TYPE", "tables must be a native AlignTables (new AlignTables(studentTable, teacherTable))");
    return Napi::ObjectWrap<AlignTablesWrap>::Unwrap(v.As<Napi::Object>())->tables_;
  }

 private:
  Napi::Value JsSameBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), tables_.sameBytesIds);
  }

  Napi::ObjectReference refS_, refT_;
  PairTables tables_;
};

}  // namespace

Napi::Value AlignBatchCall(const Napi::CallbackInfo& info, PairAligner align) {
  Napi::Env env = info.Env();
  const PairTables& pt = AlignTablesWrap::TablesOf(info[0]);
  auto S = IdList(info[1], "studentIds");
  auto T = IdList(info[2], "teacherIds");
  XOPD_CHECK(S.size() == T.size(), "E_ARG_SHAPE",
             "studentIds and teacherIds must hold the same number of sequences (" + std::to_string(S.size()) +
                 " vs " + std::to_string(T.size()) + ")");
  XOPD_CHECK(info[3].IsObject(), "E_ARG_TYPE", "opts must be an object");
  Napi::Object o = info[3].As<Napi::Object>();
  AlignOptions opt;
  if (Has(o, "maxChunkTokens")) opt.maxChunkTokens = int32_t(IntArg(o.Get("maxChunkTokens"), "maxChunkTokens"));
  XOPD_CHECK(opt.maxChunkTokens >= 1 && opt.maxChunkTokens <= (1 << 30), "E_ARG_RANGE",
             "maxChunkTokens must be at least 1");
  std::vector<int32_t> sEos = SortedIds(o, "studentEos"), tEos = SortedIds(o, "teacherEos");
  opt.studentEos = sEos.data();
  opt.studentEosCount = int32_t(sEos.size());
  opt.teacherEos = tEos.data();
  opt.teacherEosCount = int32_t(tEos.size());
  ReadDiffLimits(o, opt.diff);
  RefuseTestSwitches(o, "alignBatch");
  std::vector<TeacherIds> teacherIds(S.size(), TeacherIds::kInfer);
  if (Has(o, "teacherIds")) {
    auto v = TypedArg<uint8_t>(o.Get("teacherIds"), "teacherIds");
    XOPD_CHECK(v.size == S.size(), "E_ARG_SHAPE",
               "teacherIds must hold one entry per pair (" + std::to_string(S.size()) + "), got " + std::to_string(v.size));
    for (size_t k = 0; k < v.size; ++k) {
      XOPD_CHECK(v.data[k] <= 2, "E_ARG_RANGE", "teacherIds entries must be 0 (infer), 1 (complete) or 2 (truncated)");
      teacherIds[k] = TeacherIds(v.data[k]);
    }
  }
  const size_t B = S.size();
  std::vector<const int32_t*> sPtr(B), tPtr(B);
  std::vector<size_t> sLen(B), tLen(B);
  for (size_t k = 0; k < B; ++k) {
    sPtr[k] = S[k].data;
    sLen[k] = S[k].size;
    tPtr[k] = T[k].data;
    tLen[k] = T[k].size;
  }
  const auto clock0 = std::chrono::steady_clock::now();
  std::vector<PairResult> results;
  AlignBatch(pt, sPtr.data(), sLen.data(), tPtr.data(), tLen.data(), teacherIds.data(), B, opt, results, align);

  const auto clock1 = std::chrono::steady_clock::now();
  // Flat outputs: per-pair offsets first, then every pair copied in parallel into the JS arrays.
  std::vector<size_t> cOff(B + 1, 0), tOff(B + 1, 0);
  for (size_t k = 0; k < B; ++k) {
    cOff[k + 1] = cOff[k] + results[k].flags.size();
    tOff[k + 1] = tOff[k] + results[k].studentChunk.size();
  }
  const size_t C = cOff[B], tokens = tOff[B];
  XOPD_CHECK(C < size_t(INT32_MAX) && tokens < size_t(UINT32_MAX), "E_TOO_LONG", "the batch has too many chunks");
  Napi::Int32Array sStartA = Napi::Int32Array::New(env, C), sEndA = Napi::Int32Array::New(env, C);
  Napi::Int32Array tStartA = Napi::Int32Array::New(env, C), tEndA = Napi::Int32Array::New(env, C);
  Napi::Uint8Array flagsA = Napi::Uint8Array::New(env, C);
  Napi::Int32Array studentChunkA = Napi::Int32Array::New(env, tokens);
  struct {
    int32_t *p;
  } sStart{sStartA.Data()}, sEnd{sEndA.Data()}, tStart{tStartA.Data()}, tEnd{tEndA.Data()},
      studentChunk{studentChunkA.Data()};
  struct {
    uint8_t* p;
  } flags{flagsA.Data()};
  // No JS runs during this call, so workers may fill the arrays' memory.
  ParallelFor(B, [&](size_t b, size_t e, int) {
    for (size_t k = b; k < e; ++k) {
      const PairResult& r = results[k];
      const size_t nc = r.flags.size(), nt = r.studentChunk.size(), c = cOff[k];
      if (nc) {
        std::memcpy(sStart.p + c, r.sStart.data(), nc * 4);
        std::memcpy(sEnd.p + c, r.sEnd.data(), nc * 4);
        std::memcpy(tStart.p + c, r.tStart.data(), nc * 4);
        std::memcpy(tEnd.p + c, r.tEnd.data(), nc * 4);
        std::memcpy(flags.p + c, r.flags.data(), nc);
      }
      if (nt) std::memcpy(studentChunk.p + tOff[k], r.studentChunk.data(), nt * 4);
    }
  }, 4);
  Napi::Int32Array chunkOffsets = Napi::Int32Array::New(env, B + 1);
  Napi::Float64Array tokenOffsets = Napi::Float64Array::New(env, B + 1);
  Napi::Uint8Array bytesEqual = Napi::Uint8Array::New(env, B);
  Napi::Float64Array edits = Napi::Float64Array::New(env, B);
  Napi::Int32Array diffEnd = Napi::Int32Array::New(env, B);
  for (size_t k = 0; k <= B; ++k) {
    chunkOffsets[k] = int32_t(cOff[k]);
    tokenOffsets[k] = double(tOff[k]);
  }
  for (size_t k = 0; k < B; ++k) {
    bytesEqual[k] = results[k].bytesEqual ? 1 : 0;
    edits[k] = double(results[k].edits);
    diffEnd[k] = results[k].diffEnd;
  }
  Napi::Object out = Napi::Object::New(env);
  const auto clock2 = std::chrono::steady_clock::now();
  out.Set("alignSeconds", Napi::Number::New(env, std::chrono::duration<double>(clock1 - clock0).count()));
  out.Set("outputSeconds", Napi::Number::New(env, std::chrono::duration<double>(clock2 - clock1).count()));
  out.Set("chunkOffsets", chunkOffsets);
  out.Set("tokenOffsets", tokenOffsets);
  out.Set("studentStart", sStartA);
  out.Set("studentEnd", sEndA);
  out.Set("teacherStart", tStartA);
  out.Set("teacherEnd", tEndA);
  out.Set("flags", flagsA);
  out.Set("studentChunk", studentChunkA);
  out.Set("bytesEqual", bytesEqual);
  out.Set("edits", edits);
  out.Set("diffEnd", diffEnd);
  return out;
}

Napi::Object DiffResultObject(Napi::Env env, const DiffResult& r) {
  Napi::Int32Array runs = Napi::Int32Array::New(env, r.runs.size() * 3);
  for (size_t k = 0; k < r.runs.size(); ++k) {
    runs[3 * k] = r.runs[k].x;
    runs[3 * k + 1] = r.runs[k].y;
    runs[3 * k + 2] = r.runs[k].len;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("runs", runs);
  out.Set("end", Napi::Number::New(env, int32_t(r.end)));
  out.Set("x", Napi::Number::New(env, r.x));
  out.Set("y", Napi::Number::New(env, r.y));
  out.Set("edits", Napi::Number::New(env, double(r.edits)));
  return out;
}

namespace {

Napi::Value JsAlignBatch(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value { return AlignBatchCall(info, AlignPair); });
}

Napi::Value JsByteDiff(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto a = TypedArg<uint8_t>(info[0], "a");
    auto b = TypedArg<uint8_t>(info[1], "b");
    XOPD_CHECK(a.size < size_t(INT32_MAX) && b.size < size_t(INT32_MAX), "E_TOO_LONG", "inputs must be under 2^31 bytes");
    DiffLimits lim;
    bool truncated = false;
    if (info.Length() > 2 && info[2].IsObject()) {
      Napi::Object o = info[2].As<Napi::Object>();
      ReadDiffLimits(o, lim);
      RefuseTestSwitches(o, "byteDiff");
      truncated = Has(o, "truncated") && o.Get("truncated").ToBoolean().Value();
    }
    DiffResult r;
    DiffScratch scratch;
    ByteDiff(a.data, int32_t(a.size), b.data, int32_t(b.size), truncated, lim, scratch, r);
    return DiffResultObject(env, r);
  });
}

Registration reg("align", [](Napi::Env env, Napi::Object exports) {
  AlignTablesWrap::Init(env, exports);
  exports.Set("alignBatch", Napi::Function::New(env, JsAlignBatch, "alignBatch"));
  exports.Set("byteDiff", Napi::Function::New(env, JsByteDiff, "byteDiff"));
});

}  // namespace
}  // namespace align
}  // namespace xopd
