// RMSNorm: y = x · rstd · w with rstd = 1 / sqrt(mean(x²) + eps), one row per token.
#include <cmath>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

// x [N,d], w [d] -> y [N,d], rstd [N]
void RmsNormForward(const float* x, const float* w, int N, int d, float eps, float* y, float* rstd) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const float* xt = x + t * d;
      float* yt = y + t * d;
      double ss = 0;
      for (int j = 0; j < d; ++j) ss += static_cast<double>(xt[j]) * xt[j];
      const float r = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
      rstd[t] = r;
      for (int j = 0; j < d; ++j) yt[j] = xt[j] * r * w[j];
    }
  }, 64);
}

// dy, x [N,d], rstd [N] -> dx [N,d] (+= when accumulate), dw [d] (+=)
// With g = dy ⊙ w: dx = rstd · g − x · rstd³ · mean(g ⊙ x).
void RmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, int N, int d, float* dx,
                     bool accumulate, float* dw) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const float* dyt = dy + t * d;
      const float* xt = x + t * d;
      float* dxt = dx + t * d;
      const float r = rstd[t];
      double gx = 0;
      for (int j = 0; j < d; ++j) gx += static_cast<double>(dyt[j]) * w[j] * xt[j];
      const float c = static_cast<float>(gx / d) * r * r * r;
      for (int j = 0; j < d; ++j) {
        const float v = dyt[j] * w[j] * r - xt[j] * c;
        dxt[j] = accumulate ? dxt[j] + v : v;
      }
    }
  }, 64);
  // The gain's gradient sums over rows: one thread, rows in order, so it is thread-count independent.
  for (int t = 0; t < N; ++t) {
    const float* dyt = dy + static_cast<size_t>(t) * d;
    const float* xt = x + static_cast<size_t>(t) * d;
    const float r = rstd[t];
    for (int j = 0; j < d; ++j) dw[j] += dyt[j] * xt[j] * r;
  }
}

}  // namespace model
}  // namespace xopd
