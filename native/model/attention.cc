// Causal multi-head attention over packed GEMMs. Training/prefill and KV-cache decoding share the
// GEMM (row-independent results) and ScaledSoftmaxRow, so a decoded row equals the prefill row bit
// for bit: the prefill's extra columns above the diagonal hold exact zeros in P and add nothing.
#include <cmath>
#include <algorithm>

#include "model/ops.h"

namespace xopd {
namespace model {

void ScaledSoftmaxRow(float* p, int len, float scale) {
  float mx = -INFINITY;
  for (int u = 0; u < len; ++u) {
    p[u] *= scale;
    mx = std::max(mx, p[u]);
  }
  double sum = 0;
  for (int u = 0; u < len; ++u) {
    p[u] = std::exp(p[u] - mx);
    sum += p[u];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int u = 0; u < len; ++u) p[u] *= inv;
}

// qkv [T, 3d] -> p [T, T], out [T, d] (stride ldo), head `head`
void AttentionForward(const float* qkv, int T, int d, int heads, int head, float* p, float* out, size_t ldo,
                      AttentionScratch& s) {
  const int hd = d / heads;
  const size_t ld = 3 * static_cast<size_t>(d);
  const float* q = qkv + head * hd;
  const float* k = q + d;
  const float* v = q + 2 * d;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  PackB(k, ld, /*trans=*/true, hd, T, s.pa);  // B = K^T [hd, T]
  Gemm(T, q, ld, false, s.pa, p, T, false);    // S = Q K^T
  for (int t = 0; t < T; ++t) {
    float* row = p + static_cast<size_t>(t) * T;
    ScaledSoftmaxRow(row, t + 1, scale);
    std::fill(row + t + 1, row + T, 0.f);
  }
  PackB(v, ld, false, T, hd, s.pb);                // B = V [T, hd]
  Gemm(T, p, T, false, s.pb, out + head * hd, ldo, false);  // O = P V
}

// dout [T, d] -> dqkv [T, 3d], head `head`. With dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale:
// dQ = dS K, dK = dSᵀ Q, dV = Pᵀ dO.
void AttentionBackward(const float* dout, size_t ldo, const float* qkv, const float* p, int T, int d, int heads,
                       int head, float* dqkv, AttentionScratch& s) {
  const int hd = d / heads;
  const size_t ld = 3 * static_cast<size_t>(d);
  const float* q = qkv + head * hd;
  const float* k = q + d;
  const float* v = q + 2 * d;
  const float* dO = dout + head * hd;
  float* dq = dqkv + head * hd;
  float* dk = dq + d;
  float* dv = dq + 2 * d;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  s.dp.resize(static_cast<size_t>(T) * T);
  float* dp = s.dp.data();
  PackB(v, ld, true, hd, T, s.pa);  // B = V^T
  Gemm(T, dO, ldo, false, s.pa, dp, T, false);  // dP = dO V^T
  PackB(dO, ldo, false, T, hd, s.pb);
  Gemm(T, p, T, /*aTrans=*/true, s.pb, dv, ld, false);  // dV = P^T dO
  for (int t = 0; t < T; ++t) {
    const float* pr = p + static_cast<size_t>(t) * T;
    float* dr = dp + static_cast<size_t>(t) * T;
    double dot = 0;
    for (int u = 0; u <= t; ++u) dot += static_cast<double>(pr[u]) * dr[u];
    const float fd = static_cast<float>(dot);
    for (int u = 0; u <= t; ++u) dr[u] = pr[u] * (dr[u] - fd) * scale;
    std::fill(dr + t + 1, dr + T, 0.f);
  }
  PackB(k, ld, false, T, hd, s.pa);
  Gemm(T, dp, T, false, s.pa, dq, ld, false);  // dQ = dS K
  PackB(q, ld, false, T, hd, s.pb);
  Gemm(T, dp, T, true, s.pb, dk, ld, false);  // dK = dS^T Q
}

void KvCache::Init(int capacity, int nHeads, int headDim) {
  cap = capacity;
  heads = nHeads;
  hd = headDim;
  const size_t kp = size_t((cap + kPanel - 1) / kPanel) * hd * kPanel;
  const size_t vp = size_t((hd + kPanel - 1) / kPanel) * cap * kPanel;
  k.assign(kp * heads, 0.f);
  v.assign(vp * heads, 0.f);
}

void KvCache::Put(int t, const float* kRow, const float* vRow) {
  const size_t kp = size_t((cap + kPanel - 1) / kPanel) * hd * kPanel;
  const size_t vp = size_t((hd + kPanel - 1) / kPanel) * cap * kPanel;
  for (int h = 0; h < heads; ++h) {
    float* kd = k.data() + h * kp + size_t(t / kPanel) * hd * kPanel + t % kPanel;
    for (int j = 0; j < hd; ++j) kd[j * kPanel] = kRow[h * hd + j];
    float* vd = v.data() + h * vp + size_t(t) * kPanel;
    for (int j = 0; j < hd; ++j) vd[size_t(j / kPanel) * cap * kPanel + j % kPanel] = vRow[h * hd + j];
  }
}

Panels KvCache::KT(int head, int len) const {
  const size_t kp = size_t((cap + kPanel - 1) / kPanel) * hd * kPanel;
  return Panels{k.data() + head * kp, hd, len, size_t(hd) * kPanel};
}

Panels KvCache::V(int head, int len) const {
  const size_t vp = size_t((hd + kPanel - 1) / kPanel) * cap * kPanel;
  return Panels{v.data() + head * vp, len, hd, size_t(cap) * kPanel};
}

// q [d] -> out [d], head `head`
void AttentionDecode(const float* q, const KvCache& cache, int len, int d, int heads, int head, float* out,
                     AttentionScratch& s) {
  const int hd = d / heads;
  const float scale = 1.f / std::sqrt(static_cast<float>(hd));
  s.dp.resize(static_cast<size_t>(len));
  float* row = s.dp.data();
  Gemm(1, q + head * hd, d, false, cache.KT(head, len), row, len, false);
  ScaledSoftmaxRow(row, len, scale);
  Gemm(1, row, len, false, cache.V(head, len), out + head * hd, d, false);
}

}  // namespace model
}  // namespace xopd
