// Rows of logits: log-sum-exp in double, cross-entropy with its gradient (pre-training), and the
// realised logprob with the top-k that a teacher reports.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

double LogSumExp(const float* z, int n) {
  float mx = -INFINITY;
  for (int i = 0; i < n; ++i) mx = std::max(mx, z[i]);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(z[i]) - mx);
  return mx + std::log(s);
}

// logits [R,V], targets [R] (-1: ignored row) -> mean loss; dlogits [R,V] = (softmax − onehot) / count
double CrossEntropy(const float* logits, const int32_t* targets, int R, int V, float* dlogits) {
  int count = 0;
  for (int r = 0; r < R; ++r) count += targets[r] >= 0;
  std::vector<double> rowLoss(R, 0.0);
  const double inv = count ? 1.0 / count : 0.0;
  ParallelFor(R, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* z = logits + r * V;
      float* g = dlogits + r * V;
      if (targets[r] < 0) {
        std::fill(g, g + V, 0.f);
        continue;
      }
      const double lse = LogSumExp(z, V);
      for (int i = 0; i < V; ++i) g[i] = static_cast<float>(std::exp(z[i] - lse) * inv);
      g[targets[r]] -= static_cast<float>(inv);
      rowLoss[r] = lse - z[targets[r]];
    }
  }, 8);
  double loss = 0;
  for (int r = 0; r < R; ++r) loss += rowLoss[r];  // in order: thread-count independent
  return loss * inv;
}

// logits [R,V], targets [R] -> lp [R], topIdx/topLp [R,k]
void LogProbsTopK(const float* logits, const int32_t* targets, int R, int V, int k, float floor, float* lp,
                  int32_t* topIdx, float* topLp) {
  ParallelFor(R, [&](size_t b, size_t e, int) {
    std::vector<int32_t> idx(V);
    for (size_t r = b; r < e; ++r) {
      const float* z = logits + r * V;
      const double lse = LogSumExp(z, V);
      lp[r] = targets[r] >= 0 ? static_cast<float>(z[targets[r]] - lse) : floor;
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                        [&](int32_t a, int32_t c) { return z[a] > z[c] || (z[a] == z[c] && a < c); });
      for (int j = 0; j < k; ++j) {
        topIdx[r * k + j] = idx[j];
        topLp[r * k + j] = static_cast<float>(z[idx[j]] - lse);
      }
    }
  }, 4);
}

}  // namespace model
}  // namespace xopd
