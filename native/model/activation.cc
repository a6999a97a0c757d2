// The MLP nonlinearity: SwiGLU (silu(gate) · up) or GELU (tanh approximation).
#include <cmath>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

namespace {
inline float Sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
}  // namespace

// gu [N, 2h] (gate | up) -> act [N, h]
void SwiGluForward(const float* gu, int N, int h, float* act) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const float* g = gu + t * 2 * h;
      const float* u = g + h;
      float* a = act + t * h;
      for (int j = 0; j < h; ++j) a[j] = g[j] * Sigmoid(g[j]) * u[j];
    }
  }, 16);
}
// dact [N, h] -> dgu [N, 2h]; silu'(g) = σ(g) (1 + g (1 − σ(g)))
void SwiGluBackward(const float* dact, const float* gu, int N, int h, float* dgu) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t) {
      const float* g = gu + t * 2 * h;
      const float* u = g + h;
      const float* da = dact + t * h;
      float* dg = dgu + t * 2 * h;
      float* du = dg + h;
      for (int j = 0; j < h; ++j) {
        const float s = Sigmoid(g[j]);
        du[j] = da[j] * g[j] * s;
        dg[j] = da[j] * u[j] * s * (1.f + g[j] * (1.f - s));
      }
    }
  }, 16);
}

// u [N, h] -> act [N, h]: 0.5 u (1 + tanh(c (u + 0.044715 u³)))
void GeluForward(const float* u, int N, int h, float* act) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t i = b * h; i < e * h; ++i) {
      const float x = u[i];
      act[i] = 0.5f * x * (1.f + std::tanh(kGeluC * (x + 0.044715f * x * x * x)));
    }
  }, 16);
}
void GeluBackward(const float* dact, const float* u, int N, int h, float* du) {
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t i = b * h; i < e * h; ++i) {
      const float x = u[i];
      const float th = std::tanh(kGeluC * (x + 0.044715f * x * x * x));
      const float dth = (1.f - th * th) * kGeluC * (1.f + 3.f * 0.044715f * x * x);
      du[i] = dact[i] * (0.5f * (1.f + th) + 0.5f * x * dth);
    }
  }, 16);
}

}  // namespace model
}  // namespace xopd
