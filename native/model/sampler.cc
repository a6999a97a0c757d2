// Sampling one token: temperature, nucleus (top-p), seeded; the logprob returned is the model's own.
#include <algorithm>
#include <cmath>

#include "model/ops.h"

namespace xopd {
namespace model {

// SplitMix64: tiny, seedable, good enough for sampling; each sequence owns one.
uint64_t Rng::Next() {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
double Rng::Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

int SampleRow(const float* z, int V, float temperature, float topP, Rng& rng, std::vector<std::pair<float, int>>& scratch,
              double* logprob) {
  const double lse = LogSumExp(z, V);
  int pick = 0;
  if (temperature <= 0.f) {
    for (int i = 1; i < V; ++i)
      if (z[i] > z[pick]) pick = i;
  } else {
    // Probabilities at temperature, most likely first (ties: lower index), then the nucleus.
    float mx = -INFINITY;
    for (int i = 0; i < V; ++i) mx = std::max(mx, z[i]);
    scratch.resize(V);
    double sum = 0;
    for (int i = 0; i < V; ++i) {
      const float pr = static_cast<float>(std::exp((static_cast<double>(z[i]) - mx) / temperature));
      scratch[i] = {pr, i};
      sum += pr;
    }
    int keep = V;
    if (topP < 1.f) {
      // The nucleus: the most likely tokens (ties to the lower index) until their mass reaches
      // topP. Sort only a prefix, growing it until it holds the nucleus: peaked rows stay cheap.
      auto more = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
      const double target = topP * sum;
      for (int k = std::min(V, 32);; k = V) {  // then everything: a full sort beats a large heap
        if (k < V) std::partial_sort(scratch.begin(), scratch.begin() + k, scratch.end(), more);
        else std::sort(scratch.begin(), scratch.end(), more);
        double cum = 0;
        keep = 0;
        while (keep < k && cum < target) cum += scratch[keep++].first;
        if (cum >= target || k == V) {
          sum = cum;
          break;
        }
      }
    }
    const double u = rng.Uniform() * sum;
    double cum = 0;
    pick = scratch[keep - 1].second;  // rounding fallback: the last kept token
    for (int i = 0; i < keep; ++i) {
      cum += scratch[i].first;
      if (u < cum) {
        pick = scratch[i].second;
        break;
      }
    }
  }
  *logprob = z[pick] - lse;
  return pick;
}

}  // namespace model
}  // namespace xopd
