// Sparse span projection (DESIGN 5), CPU path and binding.
//   new SpanProjector(studentTable, teacherTable, studentVocab | null, teacherEos, studentEndOfTurn)
//     builds, once per (student, teacher, studentVocab): the student byte trie (non-special tokens
//     the student can emit), the map from student ids to output indices, and the map of special
//     teacher tokens (same content, else a teacher end-of-turn -> the student end of turn).
//   projector.project({studentIds, teacherIds, chunks..., logprobs, topkIds, topkLogprobs, k,
//     includeFlags, device}) -> { rowPtr, ids, probs, tail, mask }  (CSR over student rows)
// Data flow of one call: checks -> byte offsets -> per chunk: mode and, per row, (k, m, |u|) ->
// rows in parallel (span_row.h, shared with CUDA) -> per row: sort by id, tail = 1 - sum -> CSR.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/errors.h"
#include "common/registry.h"
#include "common/threads.h"
#include "common/typed.h"
#include "project/byte_trie.h"
#include "project/span_cuda.h"
#include "project/span_row.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace project {
namespace {

constexpr uint8_t kApprox = 2, kTail = 4;

class SpanProjectorWrap : public Napi::ObjectWrap<SpanProjectorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "SpanProjector",
                                    {InstanceMethod("project", &SpanProjectorWrap::Project),
                                     InstanceAccessor("trieNodes", &SpanProjectorWrap::TrieNodes, nullptr),
                                     InstanceAccessor("trieBytes", &SpanProjectorWrap::TrieBytes, nullptr),
                                     InstanceAccessor("outputSize", &SpanProjectorWrap::OutputSize, nullptr)});
    exports.Set("SpanProjector", fn);
  }

  explicit SpanProjectorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SpanProjectorWrap>(info) {
    Guard(info, [&]() -> Napi::Value {
      const TokenTable& st = UnwrapTokenTable(info[0], "studentTable");
      const TokenTable& tt = UnwrapTokenTable(info[1], "teacherTable");
      // Keep the tables' JS objects alive as long as this projector reads them.
      studentRef_ = Napi::Persistent(info[0].As<Napi::Object>());
      teacherRef_ = Napi::Persistent(info[1].As<Napi::Object>());
      student_ = &st;
      teacher_ = &tt;
      const int32_t vs = st.vocab(), vt = tt.vocab();
      outIndex_.assign(static_cast<size_t>(vs), -1);
      if (info[2].IsNull() || info[2].IsUndefined()) {
        for (int32_t i = 0; i < vs; ++i) outIndex_[i] = i;
        outputSize_ = vs;
      } else {
        auto sv = TypedArg<int32_t>(info[2], "studentVocab");
        XOPD_CHECK(sv.size >= 1, "E_ARG_VALUE", "studentVocab must list at least one id");
        for (size_t k = 0; k < sv.size; ++k) {
          const int32_t id = sv[k];
          XOPD_CHECK(id >= 0 && id < vs, "E_TOKEN_ID", "studentVocab[" + std::to_string(k) + "] = " + std::to_string(id) + " is outside the student vocabulary");
          XOPD_CHECK(outIndex_[id] < 0, "E_ARG_VALUE", "studentVocab lists id " + std::to_string(id) + " twice");
          outIndex_[id] = static_cast<int32_t>(k);
        }
        outputSize_ = static_cast<int32_t>(sv.size);
      }
      auto teos = TypedArg<int32_t>(info[3], "teacherEos");
      const int32_t studentEot = static_cast<int32_t>(IntArg(info[4], "studentEndOfTurn"));

      // The trie over the non-special student tokens the student can emit (tokenizer ids, then
      // mapped to output indices: a repeated byte string keeps the largest tokenizer id).
      std::vector<uint32_t> starts, lengths;
      std::vector<int32_t> values;
      for (int32_t id = 0; id < vs; ++id) {
        if (outIndex_[id] < 0 || st.special[id]) continue;
        starts.push_back(st.offsets[id]);
        lengths.push_back(st.length(id));
        values.push_back(id);
      }
      BuildByteTrie(st.bytes.data(), starts, lengths, values, trie_);
      for (int32_t& t : trie_.token)
        if (t >= 0) t = outIndex_[t];

      // Special teacher tokens: the student special token with the same content, else (for a
      // teacher end-of-turn id) the student's end of turn; none -> -1 (the mass stays in the tail).
      std::unordered_map<std::string, int32_t> studentSpecial;
      for (int32_t id = 0; id < vs; ++id)
        if (st.special[id] && outIndex_[id] >= 0 && st.length(id) > 0)
          studentSpecial.emplace(std::string(reinterpret_cast<const char*>(st.data(id)), st.length(id)), outIndex_[id]);
      specialMap_.assign(static_cast<size_t>(vt), -1);
      const int32_t eotOut = studentEot >= 0 && studentEot < vs ? outIndex_[studentEot] : -1;
      std::vector<uint8_t> isEos(static_cast<size_t>(vt), 0);
      for (size_t k = 0; k < teos.size; ++k)
        if (teos[k] >= 0 && teos[k] < vt) isEos[teos[k]] = 1;
      for (int32_t id = 0; id < vt; ++id) {
        if (!tt.special[id]) continue;
        auto it = studentSpecial.find(std::string(reinterpret_cast<const char*>(tt.data(id)), tt.length(id)));
        if (it != studentSpecial.end()) specialMap_[id] = it->second;
        else if (isEos[id]) specialMap_[id] = eotOut;
      }
      return info.Env().Undefined();
    });
  }

  ~SpanProjectorWrap() override {
#ifdef XOPD_WITH_CUDA
    if (device_) cuda::FreeTables(device_);
#endif
  }

 private:
  Napi::Value TrieNodes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(trie_.token.size())); }
  Napi::Value TrieBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(trie_.Bytes())); }
  Napi::Value OutputSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), outputSize_); }

  Napi::Value Project(const Napi::CallbackInfo& info);

  Napi::ObjectReference studentRef_, teacherRef_;
  const TokenTable* student_ = nullptr;
  const TokenTable* teacher_ = nullptr;
  std::vector<int32_t> outIndex_;    // [student vocab] -> output index or -1
  int32_t outputSize_ = 0;
  ByteTrie trie_;
  std::vector<int32_t> specialMap_;  // [teacher vocab]
#ifdef XOPD_WITH_CUDA
  cuda::DeviceTables* device_ = nullptr;
#endif
};

double CheckedProb(float lp, const char* name, size_t at) {
  XOPD_CHECK(!std::isnan(lp) && lp <= 1e-3f, "E_ARG_VALUE",
             std::string(name) + "[" + std::to_string(at) + "] = " + std::to_string(lp) + " is not a log-probability (NaN, or a probability above 1)");
  return ProbOf(lp);
}

Napi::Value SpanProjectorWrap::Project(const Napi::CallbackInfo& info) {
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
    const std::string device = o.Get("device").IsString() ? o.Get("device").As<Napi::String>().Utf8Value() : "cpu";
    const size_t n = sIds.size, m = tIds.size, C = cs0.size;
    const TokenTable& st = *student_;
    const TokenTable& tt = *teacher_;

    // ---- checks ----
    XOPD_CHECK(n >= 1, "E_ARG_SHAPE", "studentIds is empty: nothing to project");
    XOPD_CHECK(K >= 0 && K <= 4096, "E_ARG_RANGE", "teacher.k must be in [0, 4096]");
    XOPD_CHECK(lp.size == m, "E_ARG_SHAPE", "teacher.logprobs must have one entry per teacher id");
    XOPD_CHECK(topIds.size == m * static_cast<size_t>(K) && topLp.size == topIds.size, "E_ARG_SHAPE",
               "teacher.topkIds and teacher.topkLogprobs must have teacherIds.length * k entries");
    XOPD_CHECK(cs1.size == C && ct0.size == C && ct1.size == C && flags.size == C, "E_ARG_SHAPE", "alignment arrays must have chunkCount entries");
    CheckIds(st, sIds.data, n, "studentIds");
    CheckIds(tt, tIds.data, m, "teacherIds");
    CheckIds(tt, topIds.data, topIds.size, "teacher.topkIds");
    for (size_t j = 0; j < n; ++j)
      XOPD_CHECK(outIndex_[sIds[j]] >= 0, "E_TOKEN_ID", "studentIds[" + std::to_string(j) + "] = " + std::to_string(sIds[j]) + " is not in studentVocab (ids the student can emit)");
    {
      int32_t s = 0, t = 0;
      for (size_t c = 0; c < C; ++c) {
        XOPD_CHECK(cs0[c] == s && cs1[c] >= cs0[c] && ct0[c] == t && ct1[c] >= ct0[c], "E_ARG_VALUE",
                   "alignment chunk " + std::to_string(c) + " does not continue the previous one");
        s = cs1[c];
        t = ct1[c];
      }
      XOPD_CHECK(static_cast<size_t>(s) == n && static_cast<size_t>(t) == m, "E_ARG_SHAPE",
                 "the alignment covers " + std::to_string(s) + " student and " + std::to_string(t) + " teacher tokens, but " +
                     std::to_string(n) + " and " + std::to_string(m) + " were given");
    }
    {
      std::vector<int32_t> seen;
      for (size_t i = 0; i < m; ++i) {
        double mass = CheckedProb(lp[i], "teacher.logprobs", i);
        seen.assign(topIds.data + i * K, topIds.data + (i + 1) * K);
        std::sort(seen.begin(), seen.end());
        XOPD_CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end(), "E_ARG_VALUE",
                   "teacher.topkIds at position " + std::to_string(i) + " lists an id twice");
        for (int64_t c = 0; c < K; ++c) {
          const double p = CheckedProb(topLp[i * K + c], "teacher.topkLogprobs", i * K + c);
          if (topIds[i * K + c] != tIds[i]) mass += p;
        }
        XOPD_CHECK(mass <= 1.0 + 1e-3, "E_ARG_VALUE",
                   "teacher probabilities at position " + std::to_string(i) + " sum to " + std::to_string(mass) + " > 1");
      }
    }

    // ---- plan: a task per student row ----
    std::vector<int32_t> so(n + 1), to(m + 1);
    ByteOffsets(st, sIds.data, n, so.data());
    ByteOffsets(tt, tIds.data, m, to.data());
    std::vector<RowTask> tasks(n);
    std::vector<uint8_t> mask(n, 0);
    std::vector<uint8_t> bs, bt;
    int64_t slots = 0;
    for (size_t c = 0; c < C; ++c) {
      const int32_t s0 = cs0[c], s1 = cs1[c], t0 = ct0[c], t1 = ct1[c];
      for (int32_t j = s0; j < s1; ++j) tasks[j] = RowTask{0, 0, 0, outIndex_[sIds[j]], 0, 0, 0};
      if ((flags[c] & (kApprox | kTail)) || s1 == s0 || t1 == t0) continue;  // no teacher text for these bytes
      const bool counted = (flags[c] & ~static_cast<uint8_t>(include)) == 0;
      bs.clear();
      bt.clear();
      for (int32_t j = s0; j < s1; ++j) bs.insert(bs.end(), st.data(sIds[j]), st.data(sIds[j]) + st.length(sIds[j]));
      for (int32_t i = t0; i < t1; ++i) bt.insert(bt.end(), tt.data(tIds[i]), tt.data(tIds[i]) + tt.length(tIds[i]));
      if (bs != bt) {
        // Different bytes but one token each side (the end-of-turn pair): project at that position.
        if (s1 - s0 == 1 && t1 - t0 == 1) {
          tasks[s0] = RowTask{t0, t0, 0, outIndex_[sIds[s0]], 0, 0, 1};
          mask[s0] = counted;
        }
        continue;
      }
      int32_t last = -1;
      for (int32_t j = s0; j < s1; ++j)
        if (so[j + 1] > so[j]) last = j;
      const int32_t base = to[t0] - so[s0];  // teacher offset = student offset + base inside this chunk
      int32_t i = t0;
      bool first = true;
      for (int32_t j = s0; j < s1; ++j) {
        RowTask& task = tasks[j];
        mask[j] = counted;
        const int32_t o = so[j] + base, e = so[j + 1] + base;
        if (e == o) {
          task.walk = 2;  // a token with no bytes: certain
          continue;
        }
        if (first) {
          i = t0;
          first = false;
        } else {
          while (i < t1 && to[i + 1] <= o) ++i;  // first teacher token ending after o
        }
        int32_t k = i, mm = i;
        // up to the token covering e - 1, plus zero-byte tokens sitting at e
        while (mm + 1 < t1 && (to[mm + 1] < e || (to[mm + 1] == e && to[mm + 2] == e))) ++mm;
        if (j == last) mm = t1 - 1;
        task.k = k;
        task.m = mm;
        task.uLen = o - to[k];
        task.walk = 1;
      }
    }
    for (size_t j = 0; j < n; ++j) {
      RowTask& t = tasks[j];
      t.cap = t.walk == 1 ? static_cast<int32_t>((t.m - t.k + 1) * (K + 1) + 1) : (t.walk == 2 ? 1 : 0);
      t.at = slots;
      slots += t.cap;
    }

    // ---- rows ----
    std::vector<int32_t> outIds(static_cast<size_t>(slots));
    std::vector<double> outProbs(static_cast<size_t>(slots));
    std::vector<int32_t> count(n, 0);
    const TeacherView tv{tIds.data, lp.data, topIds.data, topLp.data, static_cast<int32_t>(K)};
    const TokenBytesView tb{tt.bytes.data(), tt.offsets.data(), tt.special.data()};
    if (device == "cuda") {
#ifdef XOPD_WITH_CUDA
      cuda::HostTables host{&trie_, tb, static_cast<size_t>(tt.vocab()), tt.bytes.size(), specialMap_.data()};
      cuda::RowsArgs a{tasks.data(), n, tv, m, slots, outIds.data(), outProbs.data(), count.data()};
      std::string err = cuda::ProjectRows(&device_, host, a);
      if (!err.empty()) throw Error("E_CUDA", err);
#else
      throw Error("E_CUDA_UNAVAILABLE", "the addon was built without CUDA");
#endif
    } else if (device == "cpu") {
      const TrieView trie = trie_.View();
      ParallelFor(n, [&](size_t b, size_t e, int) {
        for (size_t j = b; j < e; ++j) {
          const RowTask& t = tasks[j];
          if (t.walk == 2) {
            outIds[t.at] = t.sOut;
            outProbs[t.at] = 1.0;
            count[j] = 1;
          } else {
            count[j] = ProjectRow(t, tv, tb, trie, specialMap_.data(), outIds.data() + t.at, outProbs.data() + t.at);
          }
        }
      }, 64);
    } else {
      throw Error("E_ARG_VALUE", "device must be 'cpu' or 'cuda'");
    }

    // ---- CSR: rows sorted by id, tail = 1 - sum ----
    int64_t nnz = 0;
    for (size_t j = 0; j < n; ++j) nnz += count[j];
    XOPD_CHECK(nnz <= INT32_MAX, "E_TOO_LONG", "the projection has more than 2^31 entries");
    Napi::Int32Array rowPtr = Napi::Int32Array::New(env, n + 1);
    Napi::Int32Array ids = Napi::Int32Array::New(env, static_cast<size_t>(nnz));
    Napi::Float32Array probs = Napi::Float32Array::New(env, static_cast<size_t>(nnz));
    Napi::Float32Array tail = Napi::Float32Array::New(env, n);
    Napi::Uint8Array maskOut = Napi::Uint8Array::New(env, n);
    std::vector<std::pair<int32_t, double>> row;
    int32_t at = 0;
    rowPtr[0] = 0;
    for (size_t j = 0; j < n; ++j) {
      row.clear();
      for (int32_t s = 0; s < count[j]; ++s) row.emplace_back(outIds[tasks[j].at + s], outProbs[tasks[j].at + s]);
      std::sort(row.begin(), row.end());
      double sum = 0.0;
      for (auto& e : row) sum += e.second;
      const double scale = sum > 1.0 ? 1.0 / sum : 1.0;  // rounding only: the events are disjoint
      for (auto& e : row) {
        ids[at] = e.first;
        probs[at] = static_cast<float>(e.second * scale);
        ++at;
      }
      rowPtr[j + 1] = at;
      tail[j] = static_cast<float>(sum >= 1.0 ? 0.0 : 1.0 - sum);
      maskOut[j] = mask[j];
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("rowPtr", rowPtr);
    out.Set("ids", ids);
    out.Set("probs", probs);
    out.Set("tail", tail);
    out.Set("mask", maskOut);
    return out;
  });
}

Registration reg("project.span_projection", SpanProjectorWrap::Init);

}  // namespace
}  // namespace project
}  // namespace xopd
