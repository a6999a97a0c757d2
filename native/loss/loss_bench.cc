// Bench-only CPU kernels (loss_bench.h): the parallel memcpy and the unfused two-kernel baseline.
#include "loss/loss_bench.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/errors.h"
#include "common/threads.h"
#include "loss/loss_math.h"
#include "loss/row_ops.h"

namespace xopd {
namespace loss {

void CopyParallel(void* dst, const void* src, size_t n) {
  constexpr size_t kChunk = size_t{1} << 20;
  ParallelFor((n + kChunk - 1) / kChunk, [&](size_t b, size_t e, int) {
    const size_t lo = b * kChunk, hi = std::min(n, e * kChunk);
    std::memcpy(static_cast<uint8_t*>(dst) + lo, static_cast<const uint8_t*>(src) + lo, hi - lo);
  });
}

double SparseDivergenceUnfused(const float* logits, size_t rows, size_t vocab, const int32_t* rowPtr, const int32_t* ids,
                               const float* probs, const float* tail, float* sm, float* out) {
  for (size_t k = 0; k < static_cast<size_t>(rowPtr[rows]); ++k)
    XOPD_CHECK(ids[k] >= 0 && static_cast<size_t>(ids[k]) < vocab, "E_TOKEN_ID", "id out of range");
  const size_t minRows = std::max<size_t>(1, 65536 / vocab);
  // kernel 1: softmax, materialised
  ParallelFor(rows, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      float m;
      double s;
      if (!RowMaxSumExp(logits + r * vocab, vocab, 1.0f, nullptr, 0, &m, &s)) throw Error("E_ARG_VALUE", "non-finite logits");
      RowScaledExp(logits + r * vocab, vocab, 1.0f, m, static_cast<float>(1.0 / s), sm + r * vocab, false);
    }
  }, minRows);
  // kernel 2: gradient from the stored softmax
  std::vector<double> rowLoss(rows);
  const double w = 1.0 / rows;
  ParallelFor(rows, [&](size_t b, size_t e, int) {
    std::vector<uint8_t> inSupport(vocab);
    for (size_t r = b; r < e; ++r) {
      const float* p = sm + r * vocab;
      float* g = out + r * vocab;
      for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) inSupport[ids[k]] = 1;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (size_t v = 0; v < vocab; ++v) acc[v & 7] += inSupport[v] ? 0.0f : p[v];
      double other = 0.0;
      for (float a : acc) other += a;
      double loss = 0.0, H = 0.0;
      for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
        BucketTerm t = Bucket(kForwardKL, 0, p[ids[k]], probs[k]);
        loss += t.loss;
        H += t.h;
      }
      const BucketTerm to = Bucket(kForwardKL, 0, other, tail[r]);
      loss += to.loss;
      H += to.h;
      const float C = static_cast<float>(((other > 0 ? to.h / other : 0.0) - H) * w);
      for (size_t v = 0; v < vocab; ++v) g[v] = p[v] * C;
      for (int32_t k = rowPtr[r]; k < rowPtr[r + 1]; ++k) {
        g[ids[k]] = static_cast<float>((-probs[k] - p[ids[k]] * H) * w);
        inSupport[ids[k]] = 0;
      }
      rowLoss[r] = loss;
    }
  }, minRows);
  double loss = 0.0;
  for (double l : rowLoss) loss += l;
  return loss / rows;
}

}  // namespace loss
}  // namespace xopd
