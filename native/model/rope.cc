// Rotary positions: pair (i, i + hd/2) of each head is rotated by pos · theta^(-2i/hd).
#include <cmath>

#include "common/threads.h"
#include "model/ops.h"

namespace xopd {
namespace model {

void RopeTable::Build(int maxSeqLen, int headDim, float theta) {
  maxSeq = maxSeqLen;
  half = headDim / 2;
  cos.resize(static_cast<size_t>(maxSeq) * half);
  sin.resize(static_cast<size_t>(maxSeq) * half);
  for (int p = 0; p < maxSeq; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = p * std::pow(static_cast<double>(theta), -2.0 * i / headDim);
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(a));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(a));
    }
}

namespace {
// sign +1: forward rotation; -1: its inverse (the backward of an orthogonal map).
void Rotate(float* qkv, int N, int d, int heads, const int* positions, const RopeTable& t, float sign) {
  const int hd = d / heads, half = hd / 2;
  ParallelFor(N, [&](size_t b, size_t e, int) {
    for (size_t r = b; r < e; ++r) {
      const float* c = t.cos.data() + static_cast<size_t>(positions[r]) * half;
      const float* s = t.sin.data() + static_cast<size_t>(positions[r]) * half;
      for (int part = 0; part < 2; ++part)  // q, then k
        for (int h = 0; h < heads; ++h) {
          float* x = qkv + r * 3 * d + part * d + h * hd;
          for (int i = 0; i < half; ++i) {
            const float x1 = x[i], x2 = x[i + half], sn = sign * s[i];
            x[i] = x1 * c[i] - x2 * sn;
            x[i + half] = x2 * c[i] + x1 * sn;
          }
        }
    }
  }, 128);
}
}  // namespace

// qkv [N, 3d] in place
void RopeForward(float* qkv, int N, int d, int heads, const int* positions, const RopeTable& t) {
  Rotate(qkv, N, d, heads, positions, t, 1.f);
}
// dqkv [N, 3d] in place
void RopeBackward(float* dqkv, int N, int d, int heads, const int* positions, const RopeTable& t) {
  Rotate(dqkv, N, d, heads, positions, t, -1.f);
}

}  // namespace model
}  // namespace xopd
