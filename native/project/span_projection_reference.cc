// Plain reference of the sparse span projection (DESIGN 5), written from the definition: no trie
// (first(x) tries every prefix of x against a hash map of the student's token strings), the text x
// of each leaving path built as a string, float64 throughout. Shares no code with the fast path.
//   spanProjectionReference({studentTable, teacherTable, studentVocab?, teacherEos, studentEndOfTurn,
//     studentIds, teacherIds, studentStart, studentEnd, teacherStart, teacherEnd, flags,
//     logprobs, topkIds, topkLogprobs, k, includeFlags}) -> { rowPtr, ids, probs (Float64Array), tail, mask }
#include <cmath>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/errors.h"
#include "common/registry.h"
#include "common/typed.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace project {
namespace {

std::string Bytes(const TokenTable& t, int32_t id) { return std::string(reinterpret_cast<const char*>(t.data(id)), t.length(id)); }

Napi::Value SpanProjectionReference(const Napi::CallbackInfo& info) {
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
    const int K = static_cast<int>(IntArg(o.Get("k"), "k"));
    const int include = static_cast<int>(IntArg(o.Get("includeFlags"), "includeFlags"));
    const int32_t studentEot = static_cast<int32_t>(IntArg(o.Get("studentEndOfTurn"), "studentEndOfTurn"));
    const size_t n = sIds.size;
    CheckIds(st, sIds.data, n, "studentIds");
    CheckIds(tt, tIds.data, tIds.size, "teacherIds");
    CheckIds(tt, topIds.data, topIds.size, "topkIds");

    // Output index of a student id: its position in studentVocab, or the id itself.
    std::unordered_map<int32_t, int32_t> outIndex;
    Napi::Value sv = o.Get("studentVocab");
    const bool restricted = !sv.IsUndefined() && !sv.IsNull();
    if (restricted) {
      auto v = TypedArg<int32_t>(sv, "studentVocab");
      for (size_t k = 0; k < v.size; ++k) outIndex[v[k]] = static_cast<int32_t>(k);
    }
    auto out = [&](int32_t id) -> int32_t {
      if (!restricted) return id;
      auto it = outIndex.find(id);
      return it == outIndex.end() ? -1 : it->second;
    };
    // The student's token strings (non-special, emittable); a repeated string keeps the larger id.
    std::unordered_map<std::string, int32_t> vocab;
    size_t maxLen = 0;
    for (int32_t id = 0; id < st.vocab(); ++id) {
      if (st.special[id] || st.length(id) == 0 || out(id) < 0) continue;
      int32_t& slot = vocab.emplace(Bytes(st, id), -1).first->second;
      slot = std::max(slot, id);
      maxLen = std::max<size_t>(maxLen, st.length(id));
    }
    auto first = [&](const std::string& x) -> int32_t {  // longest student token that is a prefix of x
      for (size_t len = std::min(x.size(), maxLen); len >= 1; --len) {
        auto it = vocab.find(x.substr(0, len));
        if (it != vocab.end()) return out(it->second);
      }
      return -1;
    };
    std::unordered_set<int32_t> teacherEos(teos.data, teos.data + teos.size);
    std::unordered_map<std::string, int32_t> studentSpecial;  // content -> id
    for (int32_t id = 0; id < st.vocab(); ++id)
      if (st.special[id] && out(id) >= 0 && st.length(id) > 0) studentSpecial.emplace(Bytes(st, id), id);
    auto special = [&](int32_t t) -> int32_t {  // a special teacher token: same content, else end of turn
      auto it = studentSpecial.find(Bytes(tt, t));
      if (it != studentSpecial.end()) return out(it->second);
      if (teacherEos.count(t) && studentEot >= 0) return out(studentEot);
      return -1;
    };
    auto prob = [](float l) { return std::min(1.0, std::exp(static_cast<double>(l))); };

    // The response as bytes, with the offsets of each side.
    std::vector<int32_t> so(1, 0), to(1, 0);
    std::string T;
    for (size_t j = 0; j < n; ++j) so.push_back(so.back() + static_cast<int32_t>(st.length(sIds[j])));
    for (size_t i = 0; i < tIds.size; ++i) {
      T += Bytes(tt, tIds[i]);
      to.push_back(static_cast<int32_t>(T.size()));
    }

    std::vector<std::map<int32_t, double>> q(n);
    std::vector<uint8_t> mask(n, 0);
    for (size_t c = 0; c < cs0.size; ++c) {
      const int32_t s0 = cs0[c], s1 = cs1[c], t0 = ct0[c], t1 = ct1[c];
      if ((flags[c] & 6) || s0 == s1 || t0 == t1) continue;  // APPROX or TAIL: no teacher text
      const bool counted = (flags[c] & ~include) == 0;
      std::string sb;
      for (int32_t j = s0; j < s1; ++j) sb += Bytes(st, sIds[j]);
      const std::string tb = T.substr(to[t0], to[t1] - to[t0]);
      struct Walk { int32_t j, k, m; std::string u; };
      std::vector<Walk> walks;
      if (sb != tb) {
        if (s1 - s0 != 1 || t1 - t0 != 1) continue;
        walks.push_back({s0, t0, t0, ""});  // the end-of-turn pair: one position, nothing emitted before
      } else {
        int32_t firstJ = -1, lastJ = -1;
        for (int32_t j = s0; j < s1; ++j)
          if (so[j + 1] > so[j]) {
            if (firstJ < 0) firstJ = j;
            lastJ = j;
          }
        for (int32_t j = s0; j < s1; ++j) {
          mask[j] = counted;
          const int32_t oj = so[j] - so[s0] + to[t0], ej = so[j + 1] - so[s0] + to[t0];
          if (oj == ej) {
            q[j][out(sIds[j])] = 1.0;  // a token with no bytes
            continue;
          }
          int32_t k = t0, m = t1 - 1;
          if (j != firstJ)
            for (int32_t i = t0; i < t1; ++i)
              if (to[i] <= oj && oj < to[i + 1]) k = i;
          if (j != lastJ) {
            for (int32_t i = t0; i < t1; ++i)
              if (to[i] <= ej - 1 && ej - 1 < to[i + 1]) m = i;
            while (m + 1 < t1 && to[m + 1] == ej && to[m + 2] == ej) ++m;  // zero-byte tokens at e_j
          }
          walks.push_back({j, k, m, T.substr(to[k], oj - to[k])});
        }
      }
      for (const Walk& w : walks) {
        mask[w.j] = counted;
        const int32_t oj = to[w.k] + static_cast<int32_t>(w.u.size());
        auto candidates = [&](int32_t i) {  // top-k and the realised token, each once
          std::vector<std::pair<int32_t, double>> cand{{tIds[i], prob(lp[i])}};
          for (int k = 0; k < K; ++k)
            if (topIds[i * K + k] != tIds[i]) cand.push_back({topIds[i * K + k], prob(topLp[i * K + k])});
          return cand;
        };
        auto beginsWithU = [&](int32_t t) { return Bytes(tt, t).compare(0, w.u.size(), w.u) == 0 && tt.length(t) >= w.u.size(); };
        double Z = 1.0;
        if (!w.u.empty()) {
          Z = 0.0;
          for (auto& [t, p] : candidates(w.k))
            if (beginsWithU(t)) Z += p;
        }
        if (!(Z > 0)) continue;
        double pi = 1.0;
        for (int32_t i = w.k; i <= w.m; ++i) {
          const double zi = i == w.k ? Z : 1.0;
          for (auto& [t, p] : candidates(i)) {
            if (t == tIds[i]) continue;
            if (i == w.k && !beginsWithU(t)) continue;
            const std::string x = i == w.k ? Bytes(tt, t).substr(w.u.size()) : T.substr(oj, to[i] - oj) + Bytes(tt, t);
            const int32_t target = tt.special[t] ? special(t) : first(x);
            if (target >= 0 && pi * p / zi > 0) q[w.j][target] += pi * p / zi;
          }
          pi *= prob(lp[i]) / zi;
        }
        if (pi > 0) q[w.j][out(sIds[w.j])] += pi;
      }
    }
    size_t nnz = 0;
    for (auto& r : q) nnz += r.size();
    Napi::Int32Array rowPtr = Napi::Int32Array::New(env, n + 1);
    Napi::Int32Array ids = Napi::Int32Array::New(env, nnz);
    Napi::Float64Array probs = Napi::Float64Array::New(env, nnz);
    Napi::Float64Array tail = Napi::Float64Array::New(env, n);
    Napi::Uint8Array maskOut = Napi::Uint8Array::New(env, n);
    size_t at = 0;
    rowPtr[0] = 0;
    for (size_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (auto& [id, p] : q[j]) {
        ids[at] = id;
        probs[at++] = p;
        sum += p;
      }
      rowPtr[j + 1] = static_cast<int32_t>(at);
      tail[j] = 1.0 - sum;
      maskOut[j] = mask[j];
    }
    Napi::Object res = Napi::Object::New(env);
    res.Set("rowPtr", rowPtr);
    res.Set("ids", ids);
    res.Set("probs", probs);
    res.Set("tail", tail);
    res.Set("mask", maskOut);
    return res;
  });
}

Registration reg("project.span_projection_reference", [](Napi::Env env, Napi::Object exports) {
  exports.Set("spanProjectionReference", Napi::Function::New(env, SpanProjectionReference, "spanProjectionReference"));
});

}  // namespace
}  // namespace project
}  // namespace xopd
