// Fused bucketed divergence (DESIGN 6), forward and backward in one call, CPU path.
//   logits [rows, vocab] fp32|bf16; targets: rowPtr [rows+1], per bucket ids/probs (and groupLo/Hi),
//   tail [rows], byteOrder (the bucket format of project/span_projection.h)
//   per row j: buckets = each single id s (p_s, q_s), each prefix group g (p_g = sum over the ids it
//   holds, q_g), and "other" (p_o = sum over the rest, q_o = tail)
//   loss = (1/N) sum_{j kept} D(q_j, p_j);  grad [rows, vocab] = d loss / d logits
// Per row (a CUDA version can follow the same steps with a block per row: the member bitmask in
// shared memory, as the single-id kernel keeps its support bitmask, and the members' labels in a
// per-row scratch):
//   1. members: the single ids; a row with groups also walks its ranges of byteOrder (sorted by lo,
//      the widest first, a stack of open ranges gives each rank to the innermost range), labels
//      each column with its group, then lets the single ids overwrite their columns (first claim);
//      the bitmap of all bucket columns, read in order, lists the group members by column;
//   2. pass 1 reads the row once for the max and the DIRECT sum of exp over the columns in no
//      bucket ("other"): single-id rows skip a sorted id list, grouped rows the bitmap; the group
//      members' z/T are gathered block by block while each block is in L1;
//   3. each bucket's mass, relative to its own max and rescaled in float64: single ids gathered in
//      float64; a group, the float exps of its members relative to the group's max, summed in float64;
//   4. the bucket terms (loss_math.h Bucket) give one coefficient per bucket;
//   5. pass 2 writes grad_u = exp(z_u/T - max) * C for every u (from the exps pass 1 kept, during
//      the next row's pass 1: RowPipeline); a single id's entry is overwritten after the row, a group
//      member's with its block (p_u times its bucket's coefficient). Softmax is never stored.
// Rows without groups take steps 2-5 with single ids only, exactly as before groups existed.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cuda_info.h"
#include "common/errors.h"
#include "common/threads.h"
#include "loss/loss.h"
#include "loss/loss_cuda.h"
#include "loss/loss_math.h"
#include "loss/row_ops.h"

namespace xopd {
namespace loss {
namespace {

inline float LoadOne(const float* p) { return *p; }
inline float LoadOne(const uint16_t* p) { return Bf16ToF32(*p); }

struct RowScratch {
  std::vector<std::pair<int32_t, int32_t>> order;  // (id, entry) sorted by id
  std::vector<int32_t> skip;
  std::vector<double> e, h, q;
  // rows with prefix groups
  std::vector<uint64_t> bits;     // [vocab / 64] columns in a bucket; all zero between rows
  std::vector<int32_t> label;     // [vocab] a member column's bucket entry (-1: a single id), valid where bits are set
  std::vector<int32_t> singles;   // entries of single ids
  std::vector<int32_t> groups;    // entries of groups, by lo then the widest first
  std::vector<int32_t> stack;
  std::vector<int32_t> cols, entry;  // group members sorted by column (so by block), and their bucket
  std::vector<uint32_t> blockStart;  // [blocks + 1] (RowPipeline::BlockEntries)
  std::vector<float> values, shift;  // [members] z/T gathered in pass 1 -> exps -> gradient; its group's max
  std::vector<double> groupMax, groupSum;  // [entries] per group: max of z/T, sum of exps relative to it
};

inline void SetBit(std::vector<uint64_t>& b, int32_t i) { b[static_cast<size_t>(i) >> 6] |= uint64_t{1} << (i & 63); }

// Step 1 of a row with groups: S.bits, every column in a bucket (pass 1 skips them; the caller
// clears the bitmap after pass 1); S.cols / S.entry / S.blockStart, the group members by column
// with their bucket. Ranges are laminar (CheckTargets):
// sorted by lo, the widest first, a stack of open ranges gives each rank to the innermost range
// holding it; a column a single id names stays the single id's. The bitmap, read in order, sorts.
void GroupMembers(const SparseDivergenceArgs& a, int32_t b, int32_t n, size_t blocks, RowScratch& S) {
  S.singles.clear();
  S.groups.clear();
  for (int32_t k = 0; k < n; ++k) (a.ids[b + k] >= 0 ? S.singles : S.groups).push_back(k);
  const int32_t* lo = a.groupLo + b;
  const int32_t* hi = a.groupHi + b;
  std::sort(S.groups.begin(), S.groups.end(), [&](int32_t x, int32_t y) { return lo[x] != lo[y] ? lo[x] < lo[y] : hi[x] > hi[y]; });
  auto emit = [&](int32_t entry, int32_t r0, int32_t r1) {
    for (int32_t r = r0; r < r1; ++r) {
      const int32_t col = a.byteOrder[r];
      SetBit(S.bits, col);
      S.label[col] = entry;
    }
  };
  S.stack.clear();
  int32_t pos = 0;
  for (int32_t g : S.groups) {
    while (!S.stack.empty() && hi[S.stack.back()] <= lo[g]) {
      emit(S.stack.back(), pos, hi[S.stack.back()]);
      pos = hi[S.stack.back()];
      S.stack.pop_back();
    }
    if (!S.stack.empty()) emit(S.stack.back(), pos, lo[g]);
    pos = lo[g];
    S.stack.push_back(g);
  }
  while (!S.stack.empty()) {
    emit(S.stack.back(), pos, hi[S.stack.back()]);
    pos = hi[S.stack.back()];
    S.stack.pop_back();
  }
  // Single ids claim first: they overwrite the label a range gave their column.
  for (int32_t k : S.singles) {
    SetBit(S.bits, a.ids[b + k]);
    S.label[a.ids[b + k]] = -1;
  }
  // The bitmap in column order: the members with their bucket (the bitmap itself is pass 1's skip set).
  S.cols.clear();
  S.entry.clear();
  for (size_t w = 0; w < S.bits.size(); ++w) {
    uint64_t x = S.bits[w];
    while (x) {
      const int32_t col = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(x)));
      x &= x - 1;
      const int32_t l = S.label[col];
      if (l < 0) continue;
      S.cols.push_back(col);
      S.entry.push_back(l);
    }
  }
  S.blockStart.resize(blocks + 1);
  const size_t m = S.cols.size();
  size_t u = 0;
  for (size_t bl = 0; bl < blocks; ++bl) {
    S.blockStart[bl] = static_cast<uint32_t>(u);
    while (u < m && static_cast<size_t>(S.cols[u]) < (bl + 1) * kRowBlock) ++u;
  }
  S.blockStart[blocks] = static_cast<uint32_t>(m);
}

// Per group (bucket entry) of the members' values v: the max (fold = max) or the sum. Members of
// one group come in runs; each run is folded in registers (no store-to-load chain per member).
template <bool kMax>
void FoldRuns(const std::vector<int32_t>& entry, const float* v, size_t m, std::vector<double>& out) {
  for (size_t u = 0; u < m;) {
    const int32_t g = entry[u];
    size_t e = u + 1;
    while (e < m && entry[e] == g) ++e;
    double a[4] = {kMax ? -INFINITY : 0.0, kMax ? -INFINITY : 0.0, kMax ? -INFINITY : 0.0, kMax ? -INFINITY : 0.0};
    size_t i = u;
    for (; i + 4 <= e; i += 4)
      for (int l = 0; l < 4; ++l) a[l] = kMax ? std::max(a[l], static_cast<double>(v[i + l])) : a[l] + v[i + l];
    for (; i < e; ++i) a[0] = kMax ? std::max(a[0], static_cast<double>(v[i])) : a[0] + v[i];
    out[g] = kMax ? std::max({out[g], a[0], a[1], a[2], a[3]}) : out[g] + ((a[0] + a[1]) + (a[2] + a[3]));
    u = e;
  }
}

// One row with prefix groups: steps 2-5 of the header (a row without groups takes the loop in
// SparseDivergenceCpu). Returns the row's loss.
template <typename T>
double GroupedRow(const SparseDivergenceArgs& a, size_t r, double invKept, RowScratch& S, RowPipeline<T>& pipe) {
  const size_t vocab = a.logits.vocab;
  const T* z = static_cast<const T*>(a.logits.data) + r * vocab;
  T* g = static_cast<T*>(a.grad) + r * vocab;
  const DivergenceParams& P = a.params;
  const float scale = static_cast<float>(P.invTemp);
  const int32_t b = a.rowPtr[r], n = a.rowPtr[r + 1] - a.rowPtr[r];
  GroupMembers(a, b, n, pipe.Blocks(), S);
  const size_t m = S.cols.size();
  S.values.resize(m);
  typename RowPipeline<T>::BlockEntries members{S.cols.data(), S.blockStart.data(), S.values.data()};
  float mo;
  double other;
  const bool ok = pipe.MaxSumExp(z, scale, nullptr, 0, &mo, &other, &members, S.bits.data());
  for (int32_t k : S.singles) S.bits[static_cast<size_t>(a.ids[b + k]) >> 6] = 0;  // the bitmap back to all zero
  for (int32_t col : S.cols) S.bits[static_cast<size_t>(col) >> 6] = 0;
  if (!ok) throw Error("E_ARG_VALUE", "logits row " + std::to_string(r) + " holds NaN or an infinite value (after temperature)");
  // Each bucket relative to its own max, brought to the row's max M in float64.
  S.e.assign(n, 0.0);
  S.h.assign(n, 0.0);
  S.q.resize(n);
  S.groupMax.assign(n, -INFINITY);
  S.groupSum.assign(n, 0.0);
  double M = mo;
  for (int32_t k : S.singles) {
    S.e[k] = static_cast<double>(LoadOne(z + a.ids[b + k])) * P.invTemp;
    M = std::max(M, S.e[k]);
  }
  FoldRuns<true>(S.entry, S.values.data(), m, S.groupMax);
  S.shift.resize(m);
  for (size_t u = 0; u < m; ++u) S.shift[u] = static_cast<float>(S.groupMax[S.entry[u]]);
  ExpNegShifted(S.values.data(), S.shift.data(), m);  // from here on: exp(z_u/T - max of its group)
  FoldRuns<false>(S.entry, S.values.data(), m, S.groupSum);
  for (int32_t k : S.groups) M = std::max(M, S.groupMax[k]);
  const double so = other > 0.0 ? std::exp(static_cast<double>(mo) - M) : 0.0;  // e^(mo - M)
  double Z = other * so;
  for (int32_t k : S.singles) Z += (S.e[k] = std::exp(S.e[k] - M));
  for (int32_t k : S.groups) Z += (S.e[k] = S.groupSum[k] * std::exp(S.groupMax[k] - M));  // e_g = sum of its exps, relative to M
  // Targets, floored at epsilon and renormalised for reverse KL / JSD.
  double qo = FlooredQ(P.kind, a.tail[r], P.epsilon), qsum = qo;
  for (int32_t k = 0; k < n; ++k) qsum += (S.q[k] = FlooredQ(P.kind, a.probs[b + k], P.epsilon));
  if (P.kind != kForwardKL) {
    for (int32_t k = 0; k < n; ++k) S.q[k] /= qsum;
    qo /= qsum;
  }
  double loss = 0.0, H = 0.0;
  for (int32_t k = 0; k < n; ++k) {
    const BucketTerm t = Bucket(P.kind, P.beta, S.e[k] / Z, S.q[k]);
    loss += t.loss;
    S.h[k] = t.h;
    H += t.h;
  }
  const BucketTerm to = Bucket(P.kind, P.beta, other * so / Z, qo);
  loss += to.loss;
  H += to.h;
  // d loss / d z_u = (1/T) p_u (h_b / p_b - H): "other" as in the single-id path; a single id as
  // there; a group member u with e_u = exp(z_u/T - max_g): p_u / p_g = e_u / sum_g, so
  //   grad_u = e_u * (h_g / sum_g - e^(max_g - M) H / Z) * w   (one coefficient per group).
  const double w = invKept * P.invTemp;
  const double C = ((other > 0.0 ? to.h / other : 0.0) - so * H / Z) * w;
  pipe.Write(g, other > 0.0 ? mo : static_cast<float>(M), C);
  for (int32_t k : S.singles) pipe.Fix(a.ids[b + k], (S.h[k] - S.e[k] / Z * H) * w);
  for (int32_t k : S.groups) S.groupMax[k] = (S.h[k] / S.groupSum[k] - std::exp(S.groupMax[k] - M) * H / Z) * w;  // now the coefficient
  for (size_t u = 0; u < m; ++u) S.values[u] = static_cast<float>(S.values[u] * S.groupMax[S.entry[u]]);
  pipe.FixBlocks(S.cols, S.blockStart, S.values);
  return loss;
}

// A worker's pipeline and scratch, kept between calls (thread-local): the row buffers are reused
// instead of being allocated, and faulted in, on every call. Held per worker thread until a call
// with another vocabulary: 8 bytes x vocab for the pipeline, about 16 more for a grouped call's scratch.
template <typename T>
struct WorkerState {
  std::unique_ptr<RowPipeline<T>> pipe;
  size_t vocab = 0;
  bool stream = false;
  RowScratch scratch;
};

template <typename T>
WorkerState<T>& StateOf(size_t vocab, bool stream, bool groups) {
  thread_local WorkerState<T> st;
  if (!st.pipe || st.vocab != vocab || st.stream != stream) {
    st.pipe.reset(new RowPipeline<T>(vocab, stream));
    st.vocab = vocab;
    st.stream = stream;
  }
  st.pipe->Reset();  // a call that failed may have left a row pending
  if (groups) {
    st.scratch.bits.assign(vocab / 64 + 1, 0);
    st.scratch.label.resize(vocab);
  }
  return st;
}

template <typename T>
void SparseDivergenceCpu(const SparseDivergenceArgs& a, const RowOutputs& out) {
  const size_t rows = a.logits.rows, vocab = a.logits.vocab;
  const T* logits = static_cast<const T*>(a.logits.data);
  T* grad = static_cast<T*>(a.grad);
  const int32_t* rowPtr = a.rowPtr;
  const int32_t* ids = a.ids;
  const float* probs = a.probs;
  const float* tail = a.tail;
  const uint8_t* mask = a.mask;
  const DivergenceParams& P = a.params;
  double* rowLoss = out.rowLoss;
  const bool stream = StreamOutput(rows * vocab * sizeof(T));
  const float scale = static_cast<float>(P.invTemp);
  ParallelFor(rows, [&](size_t begin, size_t end, int) {
    WorkerState<T>& state = StateOf<T>(vocab, stream, a.groupLo != nullptr);
    RowScratch& S = state.scratch;
    RowPipeline<T>& pipe = *state.pipe;
    for (size_t r = begin; r < end; ++r) {
      const T* z = logits + r * vocab;
      T* g = grad + r * vocab;
      rowLoss[r] = 0.0;
      if (mask && !mask[r]) {
        pipe.Zero(g);
        continue;
      }
      const int32_t b = rowPtr[r], n = rowPtr[r + 1] - rowPtr[r];
      if (a.groupLo && std::any_of(ids + b, ids + b + n, [](int32_t id) { return id < 0; })) {
        rowLoss[r] = GroupedRow(a, r, out.invKept, S, pipe);
        continue;
      }
      S.order.resize(n);
      S.skip.resize(n);
      S.e.resize(n);
      S.h.resize(n);
      S.q.resize(n);
      for (int32_t k = 0; k < n; ++k) S.order[k] = {ids[b + k], k};
      std::sort(S.order.begin(), S.order.end());
      for (int32_t k = 0; k < n; ++k) S.skip[k] = S.order[k].first;

      // "other" = the non-support tokens, summed relative to their own max mo; the support's
      // exps are taken relative to M = max(mo, max support) in float64, and other is brought to
      // that scale in float64 too. (A shared float32 max would underflow every exp of "other"
      // when a support token sits ~87 logits above the rest.)
      float mo;
      double other;
      if (!pipe.MaxSumExp(z, scale, S.skip.data(), n, &mo, &other))
        throw Error("E_ARG_VALUE", "logits row " + std::to_string(r) + " holds NaN or an infinite value (after temperature)");
      double M = mo;
      for (int32_t k = 0; k < n; ++k) {
        S.e[k] = static_cast<double>(LoadOne(z + ids[b + k])) * P.invTemp;
        M = std::max(M, S.e[k]);
      }
      const double so = other > 0.0 ? std::exp(static_cast<double>(mo) - M) : 0.0;  // e^(mo - M)
      double Z = other * so;
      for (int32_t k = 0; k < n; ++k) {
        S.e[k] = std::exp(S.e[k] - M);
        Z += S.e[k];
      }
      // Targets, floored at epsilon and renormalised for reverse KL / JSD.
      double qo = tail[r], qsum = 0.0;
      for (int32_t k = 0; k < n; ++k) {
        S.q[k] = FlooredQ(P.kind, probs[b + k], P.epsilon);
        qsum += S.q[k];
      }
      qo = FlooredQ(P.kind, qo, P.epsilon);
      if (P.kind != kForwardKL) {
        const double norm = 1.0 / (qsum + qo);
        for (int32_t k = 0; k < n; ++k) S.q[k] *= norm;
        qo *= norm;
      }
      double loss = 0.0, H = 0.0;
      for (int32_t k = 0; k < n; ++k) {
        BucketTerm t = Bucket(P.kind, P.beta, S.e[k] / Z, S.q[k]);
        loss += t.loss;
        S.h[k] = t.h;
        H += t.h;
      }
      const BucketTerm to = Bucket(P.kind, P.beta, other * so / Z, qo);
      loss += to.loss;
      H += to.h;

      // d loss / d z_u = (1/T) * [ (p_u / p_b) h_b - p_u H ]. For u in "other", with
      // p_u = e^(z_u/T - mo) * so / Z and p_u / p_o = e^(z_u/T - mo) / other:
      //   grad_u = e^(z_u/T - mo) * C,  C = (h_o / other - so * H / Z) * w.
      const double w = out.invKept * P.invTemp;
      const double C = ((other > 0.0 ? to.h / other : 0.0) - so * H / Z) * w;
      // No token outside the support: pass 2 writes only entries overwritten below.
      pipe.Write(g, other > 0.0 ? mo : static_cast<float>(M), C);
      for (int32_t k = 0; k < n; ++k) pipe.Fix(ids[b + k], (S.h[k] - S.e[k] / Z * H) * w);
      rowLoss[r] = loss;
    }
    pipe.Flush();
  }, std::max<size_t>(1, 65536 / vocab));
}

// Checks one row of the targets: ids, probabilities, the sum with the tail; single ids distinct;
// group ranges inside byteOrder, distinct, pairwise nested or disjoint, each holding at least one
// column under the first-claim rule (rankOf: byteOrder's inverse, -1 for a column in no rank).
struct CheckScratch {
  std::vector<int32_t> sorted, groups, stack, own;
};

void CheckTargetRow(const SparseDivergenceArgs& a, size_t r, const std::vector<int32_t>& rankOf, CheckScratch& C) {
  const size_t vocab = a.logits.vocab;
  const int32_t* rowPtr = a.rowPtr;
  const int32_t* ids = a.ids;
  const float* probs = a.probs;
  double s = 0.0;
  C.sorted.clear();
  C.groups.clear();
  for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
    if (ids[k] == -1 && a.groupLo) {
      XOPD_CHECK(a.groupLo[k] >= 0 && a.groupLo[k] < a.groupHi[k] && static_cast<size_t>(a.groupHi[k]) <= a.byteOrderSize, "E_ARG_VALUE",
                 "targets.groups: bucket " + std::to_string(k) + " covers [" + std::to_string(a.groupLo[k]) + ", " + std::to_string(a.groupHi[k]) +
                     "), which is empty or not inside byteOrder (" + std::to_string(a.byteOrderSize) + " ids)");
      C.groups.push_back(k);
    } else {
      XOPD_CHECK(ids[k] >= 0 && static_cast<size_t>(ids[k]) < vocab, "E_TOKEN_ID",
                 "targets.ids[" + std::to_string(k) + "] = " + std::to_string(ids[k]) + " is outside [0, vocab = " + std::to_string(vocab) + ")" +
                     (ids[k] == -1 ? " (-1 marks a prefix group, which needs targets.groups)" : ""));
      C.sorted.push_back(ids[k]);
    }
    XOPD_CHECK(probs[k] >= 0.0f && probs[k] <= 1.0f, "E_ARG_VALUE",
               "targets.probs[" + std::to_string(k) + "] = " + std::to_string(probs[k]) + " is not a probability in [0, 1]");
    s += probs[k];
  }
  XOPD_CHECK(a.tail[r] >= 0.0f && a.tail[r] <= 1.0f, "E_ARG_VALUE", "targets.tail[" + std::to_string(r) + "] is not in [0, 1]");
  s += a.tail[r];
  XOPD_CHECK(std::fabs(s - 1.0) <= 1e-3, "E_ARG_VALUE",
             "targets row " + std::to_string(r) + ": probs + tail sum to " + std::to_string(s) + ", expected 1");
  std::sort(C.sorted.begin(), C.sorted.end());
  XOPD_CHECK(std::adjacent_find(C.sorted.begin(), C.sorted.end()) == C.sorted.end(), "E_ARG_VALUE",
             "targets row " + std::to_string(r) + " lists an id twice (buckets must be disjoint)");
  size_t held = C.sorted.size();  // columns in some bucket
  if (!C.groups.empty()) {
    const int32_t* lo = a.groupLo;
    const int32_t* hi = a.groupHi;
    // Laminar and distinct: sorted by lo (widest first), each range ends inside the open one.
    std::sort(C.groups.begin(), C.groups.end(), [&](int32_t x, int32_t y) { return lo[x] != lo[y] ? lo[x] < lo[y] : hi[x] > hi[y]; });
    C.stack.clear();
    for (int32_t k : C.groups) {
      while (!C.stack.empty() && hi[C.stack.back()] <= lo[k]) C.stack.pop_back();
      if (!C.stack.empty()) {
        const int32_t o = C.stack.back();
        XOPD_CHECK(lo[o] != lo[k] || hi[o] != hi[k], "E_ARG_VALUE",
                   "targets row " + std::to_string(r) + " lists the group [" + std::to_string(lo[k]) + ", " + std::to_string(hi[k]) + ") twice");
        XOPD_CHECK(hi[k] <= hi[o], "E_ARG_VALUE",
                   "targets row " + std::to_string(r) + ": groups [" + std::to_string(lo[o]) + ", " + std::to_string(hi[o]) + ") and [" +
                       std::to_string(lo[k]) + ", " + std::to_string(hi[k]) + ") overlap without one holding the other");
      }
      C.stack.push_back(k);
    }
    // The columns each group holds, innermost first (a nested range is narrower).
    std::sort(C.groups.begin(), C.groups.end(), [&](int32_t x, int32_t y) { return hi[x] - lo[x] < hi[y] - lo[y]; });
    C.own.assign(C.groups.size(), 0);
    for (size_t gi = 0; gi < C.groups.size(); ++gi) {
      const int32_t k = C.groups[gi];
      int64_t own = hi[k] - lo[k];
      for (int32_t id : C.sorted) own -= rankOf[id] >= lo[k] && rankOf[id] < hi[k];
      for (size_t h = 0; h < gi; ++h)
        if (lo[k] <= lo[C.groups[h]] && hi[C.groups[h]] <= hi[k]) own -= C.own[h];
      XOPD_CHECK(own > 0, "E_ARG_VALUE",
                 "targets row " + std::to_string(r) + ": the group [" + std::to_string(lo[k]) + ", " + std::to_string(hi[k]) +
                     ") holds no id once single ids and narrower groups have claimed theirs (give its mass to one of them)");
      C.own[gi] = static_cast<int32_t>(own);
      held += static_cast<size_t>(own);
    }
  }
  // Buckets holding every id leave "other" empty (p_other = 0): a tail there is mass on no token,
  // and forward KL would be +inf.
  XOPD_CHECK(held < vocab || a.tail[r] == 0.0f, "E_ARG_VALUE",
             "targets row " + std::to_string(r) + " lists every id of the vocabulary, so its tail (" + std::to_string(a.tail[r]) +
                 ") has no token to land on: fold it into the probs and set the tail to 0");
}

// Checks the targets: the offsets and byteOrder here, the rows in parallel (the first bad row is reported).
void CheckTargets(const SparseDivergenceArgs& a) {
  const size_t rows = a.logits.rows, vocab = a.logits.vocab;
  const int32_t* rowPtr = a.rowPtr;
  XOPD_CHECK(rowPtr[0] == 0, "E_ARG_VALUE", "targets.rowPtr[0] must be 0");
  for (size_t r = 0; r < rows; ++r)
    XOPD_CHECK(rowPtr[r + 1] >= rowPtr[r], "E_ARG_VALUE", "targets.rowPtr must be non-decreasing (row " + std::to_string(r) + ")");
  const size_t nnz = static_cast<size_t>(rowPtr[rows]);
  XOPD_CHECK(a.nnz == nnz, "E_ARG_SHAPE",
             "targets.ids and targets.probs must have rowPtr[rows] = " + std::to_string(nnz) + " entries");
  XOPD_CHECK(a.params.beta >= 0 && a.params.beta <= 1, "E_ARG_RANGE", "beta must be in [0, 1]");
  XOPD_CHECK(a.params.invTemp > 0 && std::isfinite(a.params.invTemp), "E_ARG_RANGE", "temperature must be > 0");
  XOPD_CHECK(a.params.epsilon > 0 && a.params.epsilon < 0.01, "E_ARG_RANGE", "epsilon must be in (0, 0.01)");
  std::vector<int32_t> rankOf;
  if (a.groupLo) {
    XOPD_CHECK(a.groupHi && a.byteOrder, "E_ARG_SHAPE", "targets.groups needs lo, hi and byteOrder");
    rankOf.assign(vocab, -1);
    for (size_t i = 0; i < a.byteOrderSize; ++i) {
      const int32_t c = a.byteOrder[i];
      XOPD_CHECK(c >= 0 && static_cast<size_t>(c) < vocab, "E_TOKEN_ID",
                 "targets.groups.byteOrder[" + std::to_string(i) + "] = " + std::to_string(c) + " is outside [0, vocab = " + std::to_string(vocab) + ")");
      XOPD_CHECK(rankOf[c] < 0, "E_ARG_VALUE", "targets.groups.byteOrder lists id " + std::to_string(c) + " twice");
      rankOf[c] = static_cast<int32_t>(i);
    }
  }
  std::vector<size_t> firstBad(ThreadCount(), rows);  // per worker
  ParallelFor(rows, [&](size_t begin, size_t end, int w) {
    CheckScratch C;
    for (size_t r = begin; r < end; ++r) {
      try {
        CheckTargetRow(a, r, rankOf, C);
      } catch (const Error&) {
        firstBad[w] = r;
        return;
      }
    }
  }, 256);
  const size_t bad = *std::min_element(firstBad.begin(), firstBad.end());
  if (bad < rows) {
    CheckScratch C;
    CheckTargetRow(a, bad, rankOf, C);  // throws its error
  }
}

}  // namespace

LossTotals SparseDivergence(const SparseDivergenceArgs& a, Device device) {
  CheckTargets(a);
  const size_t rows = a.logits.rows;
  LossTotals totals;
  totals.kept = CountKept(a.mask, rows);
  std::vector<double> rowLoss(rows);
  const RowOutputs out{totals.kept ? 1.0 / static_cast<double>(totals.kept) : 0.0, rowLoss.data(), nullptr};
  if (device == Device::kCuda) {
    XOPD_CHECK(!a.groupLo || std::all_of(a.ids, a.ids + a.nnz, [](int32_t id) { return id >= 0; }), "E_CUDA_UNAVAILABLE",
               "grouped buckets run on the CPU in this build: use device 'cpu' or 'auto' for targets with prefix groups");
#ifdef XOPD_WITH_CUDA
    RequireCudaDevice();
    int64_t badRow = -1;
    const std::string err = cuda::SparseDivergence(a, out, &badRow);
    if (badRow >= 0)
      throw Error("E_ARG_VALUE", "logits row " + std::to_string(badRow) + " holds NaN or an infinite value (after temperature)");
    if (!err.empty()) throw Error("E_CUDA", err);
#else
    throw CudaNotBuilt();
#endif
  } else if (a.logits.bf16) {
    SparseDivergenceCpu<uint16_t>(a, out);
  } else {
    SparseDivergenceCpu<float>(a, out);
  }
  for (size_t r = 0; r < rows; ++r) totals.loss += rowLoss[r];  // row order: thread-count independent
  totals.loss *= out.invKept;
  return totals;
}

}  // namespace loss
}  // namespace xopd
