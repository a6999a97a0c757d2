// One student row of the sparse span projection (DESIGN 5), shared by the CPU path (a worker per
// range of rows) and the CUDA path (a thread per row): the same code, so the same numbers.
//
// Row j covers response bytes [o_j, e_j). The host has found k (the teacher position whose token
// covers o_j), m (the one covering e_j - 1, plus zero-byte tokens at e_j) and uLen = o_j - start_k.
// The walk:
//   Z   = sum of p_k(t) over candidates t whose bytes begin with u = bytes(t_k)[0, uLen)  (1 if u empty)
//   pi  = 1; for i = k..m:
//           every candidate t != t_i (at i = k only those beginning with u) leaves the sampled path
//           with w = pi * p_i(t) / Z_i and known text x = bytes[o_j, start_i) + bytes(t) (minus u at i = k):
//             revision 2, t_i ends before e_j and x is not a prefix of the sampled text:
//                                       the prefix group G(x) gets w (x's trie node; first(x) kept as fallback)
//             otherwise (and always in revision 1): q[first(x)] += w
//           pi *= p_i(t_i) / Z_i                          (Z_i = Z at i = k, else 1)
//   q[s_j] += pi                                           (the sampled path itself)
//   revision 2: ClaimGroups applies the first-claim rule (below).
// first(x) walks the student trie; special teacher tokens go through specialMap instead (always a
// single id). A path with no student token for it (first(x) undefined) adds nothing: its mass
// stays in the tail.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/cuda_macros.h"
#include "common/portable_exp.h"
#include "project/byte_trie.h"

namespace xopd {
namespace project {

struct TokenBytesView {
  const uint8_t* bytes;     // all tokens' bytes
  const uint32_t* offsets;  // [vocab + 1]
  const uint8_t* special;   // [vocab]
};

// The teacher data of one response: position i has the realised token ids[i] with logprob
// logprobs[i], and K candidates topkIds/topkLogprobs[i * K .. i * K + K).
struct TeacherView {
  const int32_t* ids;
  const float* logprobs;
  const int32_t* topkIds;
  const float* topkLogprobs;
  int32_t K;
};

// What a row gets.
enum class RowWalk : int32_t {
  kNone = 0,     // no targets (APPROX / TAIL chunk, or no teacher text for its bytes); 0 slots
  kProject = 1,  // the walk above over teacher positions k..m; (m - k + 1) * (K + 1) + 1 slots
  kCertain = 2,  // a token with no bytes inside an exact chunk: its own id with probability 1; 1 slot
};

struct RowTask {
  int32_t k, m, uLen;  // teacher positions (absolute) and the bytes of t_k before o_j (kProject)
  int32_t sOut;        // s_j in the output index space
  int64_t at;          // first output slot of this row
  int32_t cap;         // slots reserved (see RowWalk)
  RowWalk walk;
};

// Output slots a row of this walk needs with K candidates per teacher position.
XOPD_HD int32_t RowSlotsNeeded(const RowTask& t, int32_t K) {
  switch (t.walk) {
    case RowWalk::kProject: return static_cast<int32_t>(static_cast<int64_t>(t.m - t.k + 1) * (K + 1) + 1);
    case RowWalk::kCertain: return 1;
    default: return 0;
  }
}

// PortableExp: the same bits on the CPU and the device (a row's probabilities do not depend on where it ran).
XOPD_HD double ProbOf(float logprob) {
  const double p = PortableExp(static_cast<double>(logprob));
  return p > 1.0 ? 1.0 : p;  // logprobs a hair above 0 from rounding
}

// What revision 2 reads beyond revision 1 (DESIGN 5, prefix groups). Host or device pointers.
struct PrefixGroupsView {
  const int32_t* rangeLo;  // [trie nodes] the keys below the node: [rangeLo, rangeHi) of the byte order
  const int32_t* rangeHi;
  const int32_t* depth;    // [trie nodes] |x|: the node's bytes
  const int32_t* rankOf;   // [output size] an output index's position in the byte order, or -1 (special)
  int32_t teacherTokens;   // teacher positions of the response: where the sampled text ends
};

// Adds w to the row's entry (id, node): a single id (node -1), or the prefix group of trie node
// `node` (id: first(x), where the mass goes if the group ends up with no member). Repeats merge.
// nodes null: single ids only (revision 1).
XOPD_HD int32_t AddEntry(int32_t* ids, double* probs, int32_t* nodes, int32_t count, int32_t id, int32_t node, double w) {
  for (int32_t s = 0; s < count; ++s) {
    const bool same = node >= 0 ? nodes[s] == node : ids[s] == id && (!nodes || nodes[s] < 0);
    if (same) {
      probs[s] += w;
      return count;
    }
  }
  ids[count] = id;
  probs[count] = w;
  if (nodes) nodes[count] = node;
  return count + 1;
}

// True when bytes(t)[skip..] continue the sampled teacher text from position i (bytes(t_i)[skip..],
// then t_{i+1}, ...): the path that takes t at i has not left the sampled text yet.
XOPD_HD bool ContinuesSampled(const TokenBytesView& tb, const TeacherView& tv, int32_t teacherTokens, int32_t i, int32_t skip,
                              int32_t t) {
  uint32_t a = tb.offsets[t] + skip;
  const uint32_t e = tb.offsets[t + 1];
  int32_t p = i;
  uint32_t pa = tb.offsets[tv.ids[i]] + skip, pe = tb.offsets[tv.ids[i] + 1];
  for (; a < e; ++a, ++pa) {
    while (pa == pe) {
      if (++p >= teacherTokens) return false;  // the sampled text ends first
      pa = tb.offsets[tv.ids[p]];
      pe = tb.offsets[tv.ids[p] + 1];
    }
    if (tb.bytes[a] != tb.bytes[pa]) return false;
  }
  return true;
}

// The first-claim rule of DESIGN 5 on one row's entries, in place. Single ids hold their own ids;
// the groups, from the deepest trie node (longest x) to the shallowest, each hold the members of
// their range that no single id and no deeper kept group holds. A group left with no member sends
// its mass to first(x) (merged with that single id when the row has it), or to the tail when x has
// no student token for a prefix. Afterwards every kept group holds at least one id, and the kept
// groups' ranges are distinct and pairwise nested or disjoint (trie subtrees), so "the innermost
// range claims" reproduces the rule from the ranges alone. Returns the new entry count.
XOPD_HD int32_t ClaimGroups(int32_t* ids, double* probs, int32_t* nodes, int32_t count, const PrefixGroupsView& g) {
  // Deepest first: each pass takes the largest (depth, node) below the last one taken.
  int32_t lastDepth = 0x7fffffff, lastNode = 0x7fffffff;
  for (;;) {
    int32_t at = -1;
    for (int32_t s = 0; s < count; ++s) {
      if (nodes[s] < 0) continue;
      const int32_t d = g.depth[nodes[s]], v = nodes[s];
      if ((d < lastDepth || (d == lastDepth && v < lastNode)) &&
          (at < 0 || d > g.depth[nodes[at]] || (d == g.depth[nodes[at]] && v > nodes[at])))
        at = s;
    }
    if (at < 0) return count;
    const int32_t v = nodes[at], d = g.depth[v], lo = g.rangeLo[v], hi = g.rangeHi[v];
    lastDepth = d;
    lastNode = v;
    // Members held by others: the deeper kept groups inside [lo, hi) (the outermost of them count
    // whole), and the single ids whose rank falls in [lo, hi) outside those.
    auto inside = [&](int32_t a, int32_t b, int32_t c, int32_t e) { return c <= a && b <= e; };  // [a,b) in [c,e)
    int64_t held = 0;
    for (int32_t s = 0; s < count; ++s) {
      if (nodes[s] < 0 || g.depth[nodes[s]] <= d) continue;
      const int32_t a = g.rangeLo[nodes[s]], b = g.rangeHi[nodes[s]];
      if (!inside(a, b, lo, hi)) continue;
      bool outermost = true;
      for (int32_t r = 0; r < count && outermost; ++r)
        if (r != s && nodes[r] >= 0 && g.depth[nodes[r]] > d && g.rangeHi[nodes[r]] - g.rangeLo[nodes[r]] > b - a &&
            inside(a, b, g.rangeLo[nodes[r]], g.rangeHi[nodes[r]]) && inside(g.rangeLo[nodes[r]], g.rangeHi[nodes[r]], lo, hi))
          outermost = false;
      if (outermost) held += b - a;
    }
    for (int32_t s = 0; s < count; ++s) {
      if (nodes[s] >= 0) continue;
      const int32_t r = g.rankOf[ids[s]];
      if (r < lo || r >= hi) continue;
      bool inGroup = false;
      for (int32_t h = 0; h < count && !inGroup; ++h)
        inGroup = nodes[h] >= 0 && g.depth[nodes[h]] > d && g.rangeLo[nodes[h]] <= r && r < g.rangeHi[nodes[h]] &&
                  inside(g.rangeLo[nodes[h]], g.rangeHi[nodes[h]], lo, hi);
      held += !inGroup;
    }
    if (held < hi - lo) continue;  // it keeps at least one member
    // No member left: the mass goes to first(x), a single id (or the tail).
    const int32_t f = ids[at];
    int32_t into = -1;
    for (int32_t s = 0; s < count && f >= 0; ++s)
      if (nodes[s] < 0 && ids[s] == f) into = s;
    if (f >= 0 && into < 0) {
      nodes[at] = -1;
      continue;
    }
    if (into >= 0) probs[into] += probs[at];
    --count;
    ids[at] = ids[count];
    probs[at] = probs[count];
    nodes[at] = nodes[count];
  }
}

// True when bytes(t) begins with the uLen bytes at u.
XOPD_HD bool BeginsWith(const TokenBytesView& tb, int32_t t, const uint8_t* u, int32_t uLen) {
  const uint32_t a = tb.offsets[t], len = tb.offsets[t + 1] - a;
  if (len < static_cast<uint32_t>(uLen)) return false;
  for (int32_t b = 0; b < uLen; ++b)
    if (tb.bytes[a + b] != u[b]) return false;
  return true;
}

// Projects one row into ids/probs (the row's slots); returns the number of entries written.
// groups null: revision 1 (every path to a single id). groups given: revision 2, and outNodes[s]
// says what entry s is: -1 a single id (outIds[s]), else the trie node of a prefix group (outIds[s]
// its first(x)); the first-claim rule has been applied (ClaimGroups).
XOPD_HD int32_t ProjectRow(const RowTask& task, const TeacherView& tv, const TokenBytesView& tb, const TrieView& trie,
                           const int32_t* specialMap, int32_t* outIds, double* outProbs, const PrefixGroupsView* groups = nullptr,
                           int32_t* outNodes = nullptr) {
  if (task.walk == RowWalk::kNone) return 0;
  if (task.walk == RowWalk::kCertain) {
    outIds[0] = task.sOut;
    outProbs[0] = 1.0;
    if (outNodes) outNodes[0] = -1;
    return 1;
  }
  int32_t* nodes = groups ? outNodes : nullptr;
  int32_t count = 0;
  const int32_t tk = tv.ids[task.k];
  const uint8_t* u = tb.bytes + tb.offsets[tk];
  // Z: the mass of the candidates at k consistent with the bytes already emitted (u).
  double Z = 1.0;
  if (task.uLen > 0) {
    Z = ProbOf(tv.logprobs[task.k]);
    for (int32_t c = 0; c < tv.K; ++c) {
      const int32_t t = tv.topkIds[static_cast<int64_t>(task.k) * tv.K + c];
      if (t != tk && BeginsWith(tb, t, u, task.uLen)) Z += ProbOf(tv.topkLogprobs[static_cast<int64_t>(task.k) * tv.K + c]);
    }
    if (!(Z > 0.0)) return 0;  // the sampled token has probability 0: nothing to say
  }
  // The teacher is inside the student's token while its token ends before e_j: at every position
  // before the last one of k..m that has bytes (the one covering e_j - 1).
  int32_t lastWithBytes = task.k;
  for (int32_t i = task.k; i <= task.m; ++i)
    if (tb.offsets[tv.ids[i] + 1] > tb.offsets[tv.ids[i]]) lastWithBytes = i;
  double pi = 1.0;
  // Trie state after bytes[o_j, start_i): node (or -1 once no token continues) and the longest token so far.
  int32_t node = 0, best = -1;
  for (int32_t i = task.k; i <= task.m; ++i) {
    const int32_t ti = tv.ids[i];
    const int32_t skip = i == task.k ? task.uLen : 0;
    const double zi = i == task.k ? Z : 1.0;
    for (int32_t c = 0; c < tv.K; ++c) {
      const int64_t at = static_cast<int64_t>(i) * tv.K + c;
      const int32_t t = tv.topkIds[at];
      if (t == ti) continue;
      if (skip > 0 && !BeginsWith(tb, t, u, skip)) continue;
      const double w = pi * ProbOf(tv.topkLogprobs[at]) / zi;
      if (!(w > 0.0)) continue;
      int32_t target, group = -1;
      if (tb.special[t]) {
        target = specialMap[t];  // a control token maps by identity (same content, or end of turn)
      } else {
        target = best;
        int32_t v = node;
        const uint32_t a = tb.offsets[t], e = tb.offsets[t + 1];
        for (uint32_t b = a + skip; b < e && v >= 0; ++b) {
          v = TrieChild(trie, v, tb.bytes[b]);
          if (v >= 0 && trie.token[v] >= 0) target = trie.token[v];
        }
        // v >= 0: x is a path of the trie, so G(x) (the keys below v) is not empty.
        if (groups && i < lastWithBytes && v >= 0 && !ContinuesSampled(tb, tv, groups->teacherTokens, i, skip, t)) group = v;
      }
      if (target >= 0 || group >= 0) count = AddEntry(outIds, outProbs, nodes, count, target, group, w);
    }
    pi *= ProbOf(tv.logprobs[i]) / zi;
    // Advance the prefix by the sampled token's bytes (the text both sides share).
    const uint32_t a = tb.offsets[ti], e = tb.offsets[ti + 1];
    for (uint32_t b = a + skip; b < e && node >= 0; ++b) {
      node = TrieChild(trie, node, tb.bytes[b]);
      if (node >= 0 && trie.token[node] >= 0) best = trie.token[node];
    }
  }
  if (pi > 0.0) count = AddEntry(outIds, outProbs, nodes, count, task.sOut, -1, pi);
  if (groups) count = ClaimGroups(outIds, outProbs, nodes, count, *groups);
  return count;
}

}  // namespace project
}  // namespace xopd
