// Fused policy-gradient loss (DESIGN 4), forward and backward in one call, CPU path.
//   logits [rows, vocab] fp32|bf16, actions [rows], advantages [rows], mask [rows], old [rows]
//   loss = (1/N) sum_{r kept} loss_r(log pi(a_r)),  grad [rows, vocab] = d loss / d logits
// Per row: pass 1 = online max/sum-exp, then log pi(a) and the row coefficient w; pass 2 writes
//   grad_u = w * (1[u = a] - p_u) = exp(z_u - max) * (-w / sum), and grad_a = w * (1 - p_a).
#include <algorithm>
#include <cmath>
#include <string>
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

template <typename T>
void PolicyGradientCpu(const PolicyGradientArgs& a, const RowOutputs& out) {
  const size_t rows = a.logits.rows, vocab = a.logits.vocab;
  const T* logits = static_cast<const T*>(a.logits.data);
  T* grad = static_cast<T*>(a.grad);
  const PgParams& P = a.params;
  const bool stream = StreamOutput(rows * vocab * sizeof(T));
  ParallelFor(rows, [&](size_t begin, size_t end, int) {
    RowPipeline<T> pipe(vocab, stream);
    for (size_t r = begin; r < end; ++r) {
      const T* z = logits + r * vocab;
      T* g = grad + r * vocab;
      out.rowLoss[r] = 0.0;
      out.rowClipped[r] = 0;
      if (a.mask && !a.mask[r]) {
        pipe.Zero(g);  // masked rows: no signal, not in N
        continue;
      }
      float m;
      double sum;
      if (!pipe.MaxSumExp(z, 1.0f, nullptr, 0, &m, &sum))
        throw Error("E_ARG_VALUE", "logits row " + std::to_string(r) + " holds NaN or an infinite value");
      const int32_t act = a.actions[r];
      const double logp = static_cast<double>(LoadOne(z + act)) - m - std::log(sum);
      const PgTerm t = PolicyGradientTerm(logp, a.advantages[r], a.oldLogprobs ? a.oldLogprobs[r] : 0.0, P);
      const double w = t.dlogp * out.invKept;  // d loss / d log pi(a_r)
      // (a clipped row has w = 0: write +0, not -0)
      pipe.Write(g, m, w == 0.0 ? 0.0 : -w / sum);
      pipe.Fix(act, w == 0.0 ? 0.0 : -w * std::expm1(logp));  // w * (1 - p_a), without cancellation
      out.rowLoss[r] = t.loss;
      out.rowClipped[r] = t.clipped;
    }
    pipe.Flush();
  }, std::max<size_t>(1, 65536 / vocab));
}

// What the kernels rely on, per kept row (the facade checked it too; names the first bad entry).
void CheckRows(const PolicyGradientArgs& a) {
  const PgParams& P = a.params;
  XOPD_CHECK(P.low >= 0 && P.low < 1 && P.high >= 0 && (P.dual == 0 || P.dual > 1), "E_ARG_RANGE",
             "clip needs 0 <= low < 1, high >= 0 and dual = 0 or > 1");
  for (size_t r = 0; r < a.logits.rows; ++r) {
    if (a.mask && !a.mask[r]) continue;
    XOPD_CHECK(a.actions[r] >= 0 && static_cast<size_t>(a.actions[r]) < a.logits.vocab, "E_TOKEN_ID",
               "actions[" + std::to_string(r) + "] = " + std::to_string(a.actions[r]) + " is outside [0, vocab)");
    XOPD_CHECK(std::isfinite(a.advantages[r]), "E_ARG_VALUE", "advantages[" + std::to_string(r) + "] is not finite");
    if (a.oldLogprobs)
      XOPD_CHECK(std::isfinite(a.oldLogprobs[r]) && a.oldLogprobs[r] <= 1e-4f, "E_ARG_VALUE",
                 "oldLogprobs[" + std::to_string(r) + "] must be a finite log-probability (<= 0)");
  }
}

}  // namespace

LossTotals PolicyGradient(const PolicyGradientArgs& a, Device device) {
  CheckRows(a);
  const size_t rows = a.logits.rows;
  LossTotals totals;
  totals.kept = CountKept(a.mask, rows);
  std::vector<double> rowLoss(rows);
  std::vector<int32_t> rowClipped(rows);
  const RowOutputs out{totals.kept ? 1.0 / static_cast<double>(totals.kept) : 0.0, rowLoss.data(), rowClipped.data()};
  if (device == Device::kCuda) {
#ifdef XOPD_WITH_CUDA
    RequireCudaDevice();
    int64_t badRow = -1;
    const std::string err = cuda::PolicyGradient(a, out, &badRow);
    if (badRow >= 0) throw Error("E_ARG_VALUE", "logits row " + std::to_string(badRow) + " holds NaN or an infinite value");
    if (!err.empty()) throw Error("E_CUDA", err);
#else
    throw CudaNotBuilt();
#endif
  } else if (a.logits.bf16) {
    PolicyGradientCpu<uint16_t>(a, out);
  } else {
    PolicyGradientCpu<float>(a, out);
  }
  int64_t clipped = 0;
  for (size_t r = 0; r < rows; ++r) {  // row order: the same result for any thread count
    totals.loss += rowLoss[r];
    clipped += rowClipped[r];
  }
  totals.loss *= out.invKept;
  totals.clippedFraction = totals.kept ? static_cast<double>(clipped) / totals.kept : 0.0;
  return totals;
}

}  // namespace loss
}  // namespace xopd
