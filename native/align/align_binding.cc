// JS bindings of the aligner:
//   alignBatch(studentTable, teacherTable, studentIds[], teacherIds[], opts) -> flat chunk arrays
//     pairs run on all cores (ParallelFor, one pair at a time per worker, dynamic order);
//     opts: { maxChunkTokens, studentEos, teacherEos, reference?, anchorBytes?, maxEdits?,
//             workPerByte?, workBase? }
//   byteDiff(a, b, opts) -> { runs (x, y, len triples), end, x, y, edits }   (tests and tools)
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "align/align.h"
#include "common/errors.h"
#include "common/registry.h"
#include "common/threads.h"
#include "common/typed.h"

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
  XOPD_CHECK(lim.maxEdits >= 0 && lim.maxEdits <= 16384, "E_ARG_RANGE", "maxEdits must be in [0, 16384]");
  XOPD_CHECK(lim.workPerByte >= 0 && lim.workPerByte <= 1 << 20, "E_ARG_RANGE", "workPerByte must be in [0, 2^20]");
  XOPD_CHECK(lim.workBase >= 0 && lim.workBase <= (int64_t(1) << 40), "E_ARG_RANGE", "workBase must be in [0, 2^40]");
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

Napi::Value AlignBatch(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const TokenTable& ts = UnwrapTokenTable(info[0], "studentTable");
    const TokenTable& tt = UnwrapTokenTable(info[1], "teacherTable");
    auto S = IdList(info[2], "studentIds");
    auto T = IdList(info[3], "teacherIds");
    XOPD_CHECK(S.size() == T.size(), "E_ARG_SHAPE",
               "studentIds and teacherIds must hold the same number of sequences (" + std::to_string(S.size()) +
                   " vs " + std::to_string(T.size()) + ")");
    XOPD_CHECK(info[4].IsObject(), "E_ARG_TYPE", "opts must be an object");
    Napi::Object o = info[4].As<Napi::Object>();
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
    const bool reference = Has(o, "reference") && o.Get("reference").ToBoolean().Value();
    for (size_t k = 0; k < S.size(); ++k) {
      XOPD_CHECK(S[k].size < size_t(INT32_MAX) && T[k].size < size_t(INT32_MAX), "E_TOO_LONG",
                 "a sequence is longer than 2^31 - 1 tokens");
    }

    const size_t B = S.size();
    std::vector<PairResult> results(B);
    std::atomic<size_t> next{0};
    const size_t workers = std::min<size_t>(B, size_t(ThreadCount()));
    ParallelFor(workers, [&](size_t, size_t, int) {
      thread_local AlignScratch scratch;
      for (size_t k = next.fetch_add(1); k < B; k = next.fetch_add(1)) {
        const std::string sn = "studentIds[" + std::to_string(k) + "]", tn = "teacherIds[" + std::to_string(k) + "]";
        CheckIds(ts, S[k].data, S[k].size, sn.c_str());
        CheckIds(tt, T[k].data, T[k].size, tn.c_str());
        if (reference)
          AlignPairReference(ts, S[k].data, int32_t(S[k].size), tt, T[k].data, int32_t(T[k].size), opt, results[k]);
        else
          AlignPair(ts, S[k].data, int32_t(S[k].size), tt, T[k].data, int32_t(T[k].size), opt, scratch, results[k]);
      }
    }, 1);

    size_t C = 0, tokens = 0;
    for (auto& r : results) {
      C += r.flags.size();
      tokens += r.studentChunk.size();
    }
    XOPD_CHECK(C < size_t(INT32_MAX) && tokens < size_t(UINT32_MAX), "E_TOO_LONG", "the batch has too many chunks");
    Napi::Int32Array chunkOffsets = Napi::Int32Array::New(env, B + 1);
    Napi::Float64Array tokenOffsets = Napi::Float64Array::New(env, B + 1);
    Napi::Int32Array sStart = Napi::Int32Array::New(env, C), sEnd = Napi::Int32Array::New(env, C);
    Napi::Int32Array tStart = Napi::Int32Array::New(env, C), tEnd = Napi::Int32Array::New(env, C);
    Napi::Uint8Array flags = Napi::Uint8Array::New(env, C);
    Napi::Int32Array studentChunk = Napi::Int32Array::New(env, tokens);
    Napi::Uint8Array bytesEqual = Napi::Uint8Array::New(env, B);
    Napi::Float64Array edits = Napi::Float64Array::New(env, B);
    Napi::Int32Array diffEnd = Napi::Int32Array::New(env, B);
    size_t c = 0, tok = 0;
    for (size_t k = 0; k < B; ++k) {
      const PairResult& r = results[k];
      const size_t nc = r.flags.size(), nt = r.studentChunk.size();
      chunkOffsets[k] = int32_t(c);
      tokenOffsets[k] = double(tok);
      if (nc) {
        std::memcpy(sStart.Data() + c, r.sStart.data(), nc * 4);
        std::memcpy(sEnd.Data() + c, r.sEnd.data(), nc * 4);
        std::memcpy(tStart.Data() + c, r.tStart.data(), nc * 4);
        std::memcpy(tEnd.Data() + c, r.tEnd.data(), nc * 4);
        std::memcpy(flags.Data() + c, r.flags.data(), nc);
      }
      if (nt) std::memcpy(studentChunk.Data() + tok, r.studentChunk.data(), nt * 4);
      bytesEqual[k] = r.bytesEqual ? 1 : 0;
      edits[k] = double(r.edits);
      diffEnd[k] = r.diffEnd;
      c += nc;
      tok += nt;
    }
    chunkOffsets[B] = int32_t(c);
    tokenOffsets[B] = double(tok);
    Napi::Object out = Napi::Object::New(env);
    out.Set("chunkOffsets", chunkOffsets);
    out.Set("tokenOffsets", tokenOffsets);
    out.Set("studentStart", sStart);
    out.Set("studentEnd", sEnd);
    out.Set("teacherStart", tStart);
    out.Set("teacherEnd", tEnd);
    out.Set("flags", flags);
    out.Set("studentChunk", studentChunk);
    out.Set("bytesEqual", bytesEqual);
    out.Set("edits", edits);
    out.Set("diffEnd", diffEnd);
    return out;
  });
}

Napi::Value JsByteDiff(const Napi::CallbackInfo& info) {
  return Guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto a = TypedArg<uint8_t>(info[0], "a");
    auto b = TypedArg<uint8_t>(info[1], "b");
    XOPD_CHECK(a.size < size_t(INT32_MAX) && b.size < size_t(INT32_MAX), "E_TOO_LONG", "inputs must be under 2^31 bytes");
    DiffLimits lim;
    bool reference = false;
    if (info.Length() > 2 && info[2].IsObject()) {
      Napi::Object o = info[2].As<Napi::Object>();
      ReadDiffLimits(o, lim);
      reference = Has(o, "reference") && o.Get("reference").ToBoolean().Value();
    }
    DiffResult r;
    if (reference) {
      ByteDiffReference(a.data, int32_t(a.size), b.data, int32_t(b.size), r);
    } else {
      DiffScratch scratch;
      ByteDiff(a.data, int32_t(a.size), b.data, int32_t(b.size), lim, scratch, r);
    }
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
  });
}

Registration reg("align", [](Napi::Env env, Napi::Object exports) {
  exports.Set("alignBatch", Napi::Function::New(env, AlignBatch, "alignBatch"));
  exports.Set("byteDiff", Napi::Function::New(env, JsByteDiff, "byteDiff"));
});

}  // namespace
}  // namespace align
}  // namespace xopd
