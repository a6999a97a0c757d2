// One student row of the sparse span projection (DESIGN 5), shared by the CPU path (a worker per
// range of rows) and the CUDA path (a thread per row): the same code, so the same numbers.
//
// Row j covers response bytes [o_j, e_j). The host has found k (the teacher position whose token
// covers o_j), m (the one covering e_j - 1) and uLen = o_j - start_k. The walk:
//   Z   = sum of p_k(t) over candidates t whose bytes begin with u = bytes(t_k)[0, uLen)  (1 if u empty)
//   pi  = 1; for i = k..m:
//           every candidate t != t_i (at i = k only those beginning with u) leaves the sampled path:
//             x = bytes[o_j, start_i) + bytes(t) (minus u at i = k);  q[first(x)] += pi * p_i(t) / Z_i
//           pi *= p_i(t_i) / Z_i                          (Z_i = Z at i = k, else 1)
//   q[s_j] += pi                                           (the sampled path itself)
// first(x) walks the student trie; special teacher tokens go through specialMap instead. A path
// with no student token for it (first(x) undefined) adds nothing: its mass stays in the tail.
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

// Adds w to output index `id` of the row's slots (merging repeats); returns the new count.
XOPD_HD int32_t AddTarget(int32_t* ids, double* probs, int32_t count, int32_t id, double w) {
  for (int32_t s = 0; s < count; ++s)
    if (ids[s] == id) {
      probs[s] += w;
      return count;
    }
  ids[count] = id;
  probs[count] = w;
  return count + 1;
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
XOPD_HD int32_t ProjectRow(const RowTask& task, const TeacherView& tv, const TokenBytesView& tb, const TrieView& trie,
                           const int32_t* specialMap, int32_t* outIds, double* outProbs) {
  if (task.walk == RowWalk::kNone) return 0;
  if (task.walk == RowWalk::kCertain) {
    outIds[0] = task.sOut;
    outProbs[0] = 1.0;
    return 1;
  }
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
      int32_t target;
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
      }
      if (target >= 0) count = AddTarget(outIds, outProbs, count, target, w);
    }
    pi *= ProbOf(tv.logprobs[i]) / zi;
    // Advance the prefix by the sampled token's bytes (the text both sides share).
    const uint32_t a = tb.offsets[ti], e = tb.offsets[ti + 1];
    for (uint32_t b = a + skip; b < e && node >= 0; ++b) {
      node = TrieChild(trie, node, tb.bytes[b]);
      if (node >= 0 && trie.token[node] >= 0) best = trie.token[node];
    }
  }
  if (pi > 0.0) count = AddTarget(outIds, outProbs, count, task.sOut, pi);
  return count;
}

}  // namespace project
}  // namespace xopd
