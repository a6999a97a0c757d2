// Plain reference of the sparse span projection (DESIGN 5, revisions 1 and 2), written from the
// definition: no trie (first(x) tries every prefix of x against a hash map of the student's token
// strings; a prefix group G(x) is a scan of the whole vocabulary for tokens beginning with x), the
// text x of each leaving path built as a string, the first-claim rule on explicit id sets, float64
// throughout. Its buckets list their members explicitly. Shares no code with the fast path (only
// the ProjectInput struct of pointers). Dev addon only.
#include "project/span_projection_reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace xopd {
namespace project {
namespace {

std::string Bytes(const TokenTable& t, int32_t id) { return std::string(reinterpret_cast<const char*>(t.data(id)), t.length(id)); }

}  // namespace

void SpanProjectionReference(const TokenTable& st, const TokenTable& tt, const int32_t* studentVocab, size_t studentVocabSize,
                             const int32_t* teacherEos, size_t teacherEosCount, int32_t studentEot, const ProjectInput& in,
                             ReferenceCsr& res) {
  const size_t n = in.n;
  const bool prefix = in.projection == Projection::kPrefix;
  // Output index of a student id: its position in studentVocab, or the id itself.
  std::unordered_map<int32_t, int32_t> outIndex;
  const bool restricted = studentVocab != nullptr;
  for (size_t k = 0; restricted && k < studentVocabSize; ++k) outIndex[studentVocab[k]] = static_cast<int32_t>(k);
  auto out = [&](int32_t id) -> int32_t {
    if (!restricted) return id;
    auto it = outIndex.find(id);
    return it == outIndex.end() ? -1 : it->second;
  };
  // The student's token strings (non-special, emittable); a repeated string keeps the larger id.
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<int32_t> emittable;  // every such token, repeats included (tokenizer ids)
  size_t maxLen = 0;
  for (int32_t id = 0; id < st.vocab(); ++id) {
    if (st.special[id] || st.length(id) == 0 || out(id) < 0) continue;
    int32_t& slot = vocab.emplace(Bytes(st, id), -1).first->second;
    slot = std::max(slot, id);
    emittable.push_back(id);
    maxLen = std::max<size_t>(maxLen, st.length(id));
  }
  auto first = [&](const std::string& x) -> int32_t {  // longest student token that is a prefix of x
    for (size_t len = std::min(x.size(), maxLen); len >= 1; --len) {
      auto it = vocab.find(x.substr(0, len));
      if (it != vocab.end()) return out(it->second);
    }
    return -1;
  };
  std::unordered_map<std::string, std::vector<int32_t>> groupOf;  // G(x) of each x asked about
  auto group = [&](const std::string& x) -> const std::vector<int32_t>& {  // every emittable token whose bytes begin with x
    auto it = groupOf.find(x);
    if (it != groupOf.end()) return it->second;
    std::vector<int32_t> g;
    for (int32_t id : emittable)
      if (st.length(id) >= x.size() && std::memcmp(st.data(id), x.data(), x.size()) == 0) g.push_back(out(id));
    return groupOf.emplace(x, std::move(g)).first->second;
  };
  std::unordered_set<int32_t> eos(teacherEos, teacherEos + teacherEosCount);
  std::unordered_map<std::string, int32_t> studentSpecial;  // content -> id
  for (int32_t id = 0; id < st.vocab(); ++id)
    if (st.special[id] && out(id) >= 0 && st.length(id) > 0) studentSpecial.emplace(Bytes(st, id), id);
  auto special = [&](int32_t t) -> int32_t {  // a special teacher token: same content, else end of turn
    auto it = studentSpecial.find(Bytes(tt, t));
    if (it != studentSpecial.end()) return out(it->second);
    if (eos.count(t) && studentEot >= 0) return out(studentEot);
    return -1;
  };
  auto prob = [](float l) { return std::min(1.0, std::exp(static_cast<double>(l))); };

  // The response as bytes, with the offsets of each side.
  std::vector<int32_t> so(1, 0), to(1, 0);
  std::string T;
  for (size_t j = 0; j < n; ++j) so.push_back(so.back() + static_cast<int32_t>(st.length(in.studentIds[j])));
  for (size_t i = 0; i < in.m; ++i) {
    T += Bytes(tt, in.teacherIds[i]);
    to.push_back(static_cast<int32_t>(T.size()));
  }

  // Per row: the single ids and the prefix groups (by their text x), with their mass.
  std::vector<std::map<int32_t, double>> single(n);
  std::vector<std::map<std::string, double>> groups(n);
  std::vector<uint8_t> mask(n, 0);
  for (size_t c = 0; c < in.chunks; ++c) {
    const int32_t s0 = in.studentStart[c], s1 = in.studentEnd[c], t0 = in.teacherStart[c], t1 = in.teacherEnd[c];
    if ((in.flags[c] & 6) || s0 == s1 || t0 == t1) continue;  // APPROX or TAIL: no teacher text
    const bool counted = (in.flags[c] & ~in.includeFlags) == 0;
    std::string sb;
    for (int32_t j = s0; j < s1; ++j) sb += Bytes(st, in.studentIds[j]);
    const std::string tb = T.substr(to[t0], to[t1] - to[t0]);
    struct Walk { int32_t j, k, m, ej; std::string u; };
    std::vector<Walk> walks;
    if (sb != tb) {
      if (s1 - s0 != 1 || t1 - t0 != 1) continue;
      walks.push_back({s0, t0, t0, to[t1], ""});  // the end-of-turn pair: one position, nothing emitted before
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
          single[j][out(in.studentIds[j])] = 1.0;  // a token with no bytes
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
        walks.push_back({j, k, m, ej, T.substr(to[k], oj - to[k])});
      }
    }
    for (const Walk& w : walks) {
      mask[w.j] = counted;
      const int32_t oj = to[w.k] + static_cast<int32_t>(w.u.size());
      auto candidates = [&](int32_t i) {  // top-k and the realised token, each once
        std::vector<std::pair<int32_t, double>> cand{{in.teacherIds[i], prob(in.logprobs[i])}};
        for (int k = 0; k < in.K; ++k)
          if (in.topkIds[i * in.K + k] != in.teacherIds[i]) cand.push_back({in.topkIds[i * in.K + k], prob(in.topkLogprobs[i * in.K + k])});
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
          if (t == in.teacherIds[i]) continue;
          if (i == w.k && !beginsWithU(t)) continue;
          const double mass = pi * p / zi;
          if (!(mass > 0)) continue;
          if (tt.special[t]) {
            if (special(t) >= 0) single[w.j][special(t)] += mass;
            continue;
          }
          const std::string x = i == w.k ? Bytes(tt, t).substr(w.u.size()) : T.substr(oj, to[i] - oj) + Bytes(tt, t);
          // Revision 2: the teacher leaves the sampled text while still inside the student's token
          // (its token at i ends before e_j) -> the prefix group, unless no student token begins with x.
          const bool inside = to[i + 1] < w.ej;
          const bool onSampled = T.compare(oj, x.size(), x) == 0 && oj + x.size() <= T.size();
          if (prefix && inside && !onSampled && !group(x).empty()) {
            groups[w.j][x] += mass;
          } else if (first(x) >= 0) {
            single[w.j][first(x)] += mass;
          }
        }
        pi *= prob(in.logprobs[i]) / zi;
      }
      if (pi > 0) single[w.j][out(in.studentIds[w.j])] += pi;
    }
  }
  res.rowPtr.assign(1, 0);
  res.bucketPtr.assign(1, 0);
  res.members.clear();
  res.probs.clear();
  res.tail.assign(n, 0.0);
  res.mask = mask;
  for (size_t j = 0; j < n; ++j) {
    // The first-claim rule: single ids hold their own ids; then the groups from the longest x to
    // the shortest each hold the members not claimed yet. A group left empty sends its mass to first(x).
    std::vector<std::pair<std::string, double>> byLength(groups[j].begin(), groups[j].end());
    std::stable_sort(byLength.begin(), byLength.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    std::set<int32_t> claimed;
    for (auto& [id, p] : single[j]) claimed.insert(id);
    std::vector<std::pair<std::vector<int32_t>, double>> held;
    for (auto& [x, p] : byLength) {
      std::vector<int32_t> own;
      for (int32_t id : group(x))
        if (!claimed.count(id)) own.push_back(id);
      if (own.empty()) {
        const int32_t f = first(x);
        if (f >= 0) {
          single[j][f] += p;
          claimed.insert(f);
        }
        continue;
      }
      claimed.insert(own.begin(), own.end());
      std::sort(own.begin(), own.end());
      held.emplace_back(std::move(own), p);
    }
    double sum = 0.0;
    for (auto& [id, p] : single[j]) {
      res.members.push_back(id);
      res.bucketPtr.push_back(static_cast<int32_t>(res.members.size()));
      res.probs.push_back(p);
      sum += p;
    }
    for (auto& [own, p] : held) {
      res.members.insert(res.members.end(), own.begin(), own.end());
      res.bucketPtr.push_back(static_cast<int32_t>(res.members.size()));
      res.probs.push_back(p);
      sum += p;
    }
    res.rowPtr.push_back(static_cast<int32_t>(res.probs.size()));
    res.tail[j] = 1.0 - sum;
  }
}

}  // namespace project
}  // namespace xopd
