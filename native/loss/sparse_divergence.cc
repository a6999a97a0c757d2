// Fused bucketed divergence (DESIGN 6), forward and backward in one call, CPU path.
//   logits [rows, vocab] fp32|bf16; targets CSR: rowPtr [rows+1], ids/probs [nnz], tail [rows]
//   per row j: buckets = each support id s (p_s, q_s) and "other" (p_o = sum over the rest, q_o = tail)
//   loss = (1/N) sum_{j kept} D(q_j, p_j);  grad [rows, vocab] = d loss / d logits
// Pass 1 reads the row once for the max and the DIRECT sum of exp over non-support tokens; the
// support (a few ids) is gathered in float64; pass 2 writes grad_u = exp(z_u/T - max) * C for
// every u (from the exps pass 1 kept, during the next row's pass 1: RowPipeline), then the support
// entries are overwritten with their own values. Softmax is never stored.
#include <algorithm>
#include <cmath>
#include <cstring>
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
};

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
    RowScratch S;
    RowPipeline<T> pipe(vocab, stream);
    for (size_t r = begin; r < end; ++r) {
      const T* z = logits + r * vocab;
      T* g = grad + r * vocab;
      rowLoss[r] = 0.0;
      if (mask && !mask[r]) {
        pipe.Zero(g);
        continue;
      }
      const int32_t b = rowPtr[r], n = rowPtr[r + 1] - rowPtr[r];
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

// Checks one row of the CSR targets; rows with duplicate ids are refused (buckets must be disjoint).
void CheckTargetRow(size_t r, size_t vocab, const int32_t* rowPtr, const int32_t* ids, const float* probs,
                    const float* tail, std::vector<int32_t>& sorted) {
  double s = 0.0;
  sorted.assign(ids + rowPtr[r], ids + rowPtr[r + 1]);
  for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
    XOPD_CHECK(ids[k] >= 0 && static_cast<size_t>(ids[k]) < vocab, "E_TOKEN_ID",
               "targets.ids[" + std::to_string(k) + "] = " + std::to_string(ids[k]) + " is outside [0, vocab = " + std::to_string(vocab) + ")");
    XOPD_CHECK(probs[k] >= 0.0f && probs[k] <= 1.0f, "E_ARG_VALUE",
               "targets.probs[" + std::to_string(k) + "] = " + std::to_string(probs[k]) + " is not a probability in [0, 1]");
    s += probs[k];
  }
  XOPD_CHECK(tail[r] >= 0.0f && tail[r] <= 1.0f, "E_ARG_VALUE", "targets.tail[" + std::to_string(r) + "] is not in [0, 1]");
  // A support of every id leaves "other" empty (p_other = 0): a tail there is mass on no token,
  // and forward KL would be +inf.
  XOPD_CHECK(static_cast<size_t>(rowPtr[r + 1] - rowPtr[r]) < vocab || tail[r] == 0.0f, "E_ARG_VALUE",
             "targets row " + std::to_string(r) + " lists every id of the vocabulary, so its tail (" + std::to_string(tail[r]) +
                 ") has no token to land on: fold it into the probs and set the tail to 0");
  s += tail[r];
  XOPD_CHECK(std::fabs(s - 1.0) <= 1e-3, "E_ARG_VALUE",
             "targets row " + std::to_string(r) + ": probs + tail sum to " + std::to_string(s) + ", expected 1");
  std::sort(sorted.begin(), sorted.end());
  XOPD_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), "E_ARG_VALUE",
             "targets row " + std::to_string(r) + " lists an id twice (buckets must be disjoint)");
}

// Checks the CSR targets: the offsets here, the rows in parallel (the first bad row is reported).
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
  std::vector<size_t> firstBad(ThreadCount(), rows);  // per worker
  ParallelFor(rows, [&](size_t begin, size_t end, int w) {
    std::vector<int32_t> sorted;
    for (size_t r = begin; r < end; ++r) {
      try {
        CheckTargetRow(r, vocab, rowPtr, a.ids, a.probs, a.tail, sorted);
      } catch (const Error&) {
        firstBad[w] = r;
        return;
      }
    }
  }, 256);
  const size_t bad = *std::min_element(firstBad.begin(), firstBad.end());
  if (bad < rows) {
    std::vector<int32_t> sorted;
    CheckTargetRow(bad, vocab, rowPtr, a.ids, a.probs, a.tail, sorted);  // throws its error
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
