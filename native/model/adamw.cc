// AdamW (decoupled weight decay) with global-norm gradient clipping and a warm-up + cosine schedule.
#include <cmath>
#include <vector>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

// Linear warm-up to lr over `warmup` steps, then cosine to minLr at totalSteps (constant after).
// step counts from 0 (the step about to be taken).
double LearningRate(const OptimConfig& c, int step) {
  if (c.warmup > 0 && step < c.warmup) return c.lr * (step + 1) / c.warmup;
  if (c.totalSteps <= c.warmup) return c.lr;
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup) / (c.totalSteps - c.warmup));
  return c.minLr + 0.5 * (c.lr - c.minLr) * (1.0 + std::cos(M_PI * progress));
}

double GradNorm(const float* g, size_t n) {
  constexpr size_t kChunk = 1 << 14;  // fixed chunks, summed in order: the same result on any thread count
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(chunks, 0.0);
  ParallelFor(chunks, [&](size_t b, size_t e, int) {
    for (size_t c = b; c < e; ++c) {
      double s = 0;
      for (size_t i = c * kChunk, end = std::min(n, (c + 1) * kChunk); i < end; ++i) s += static_cast<double>(g[i]) * g[i];
      part[c] = s;
    }
  });
  double s = 0;
  for (double x : part) s += x;
  return std::sqrt(s);
}

// p, g, m, v [n]; step counts from 1
void AdamWUpdate(float* p, const float* g, float* m, float* v, size_t n, const uint8_t* decayMask, const OptimConfig& c,
                 double lr, int step, float gscale) {
  const float b1 = static_cast<float>(c.beta1), b2 = static_cast<float>(c.beta2);
  const float bc1 = static_cast<float>(1.0 / (1.0 - std::pow(c.beta1, step)));
  const float bc2 = static_cast<float>(1.0 / (1.0 - std::pow(c.beta2, step)));
  const float flr = static_cast<float>(lr), eps = static_cast<float>(c.eps);
  const float decay = static_cast<float>(1.0 - lr * c.weightDecay);
  ParallelFor(n, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) {
      const float gi = g[i] * gscale;
      m[i] = b1 * m[i] + (1.f - b1) * gi;
      v[i] = b2 * v[i] + (1.f - b2) * gi * gi;
      const float upd = (m[i] * bc1) / (std::sqrt(v[i] * bc2) + eps);
      p[i] = (decayMask[i] ? p[i] * decay : p[i]) - flr * upd;
    }
  }, 4096);
}

}  // namespace model
}  // namespace xopd
