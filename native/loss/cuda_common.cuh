// Device helpers shared by the CUDA loss kernels: element loads/stores (fp32 and bf16 as uint16),
// 16-byte vector access, and block reductions that every thread of the block reads back
// identically (a fixed merge order: deterministic, and no broadcast step left to the caller).
#pragma once
#include <cstdint>

#include "common/cuda_macros.h"
#include "loss/loss_math.h"

namespace xopd {
namespace loss {
namespace cuda {

constexpr int kThreads = 512;  // one block per row
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullWarp = 0xffffffffu;

__device__ __forceinline__ float LoadF(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float LoadF(const uint16_t* p, size_t i) { return __uint_as_float(static_cast<uint32_t>(p[i]) << 16); }
__device__ __forceinline__ void StoreF(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void StoreF(uint16_t* p, size_t i, float v) { p[i] = F32ToBf16(v); }

// 16 bytes per access: 4 floats or 8 bf16.
template <typename T> struct Vec;
template <> struct Vec<float> {
  static constexpr int N = 4;
  __device__ __forceinline__ static void Load(const float* p, size_t i, float* out) {
    float4 v = *reinterpret_cast<const float4*>(p + i);
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
  }
  __device__ __forceinline__ static void Store(float* p, size_t i, const float* in) {
    *reinterpret_cast<float4*>(p + i) = make_float4(in[0], in[1], in[2], in[3]);
  }
};
template <> struct Vec<uint16_t> {
  static constexpr int N = 8;
  __device__ __forceinline__ static void Load(const uint16_t* p, size_t i, float* out) {
    uint4 v = *reinterpret_cast<const uint4*>(p + i);
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      out[2 * k] = __uint_as_float(w[k] << 16);
      out[2 * k + 1] = __uint_as_float(w[k] & 0xFFFF0000u);
    }
  }
  __device__ __forceinline__ static void Store(uint16_t* p, size_t i, const float* in) {
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) w[k] = static_cast<uint32_t>(F32ToBf16(in[2 * k])) | (static_cast<uint32_t>(F32ToBf16(in[2 * k + 1])) << 16);
    *reinterpret_cast<uint4*>(p + i) = make_uint4(w[0], w[1], w[2], w[3]);
  }
};

// Rows can use 16-byte accesses when every row starts 16-byte aligned.
template <typename T>
inline bool RowsVectorizable(size_t vocab) { return (vocab * sizeof(T)) % 16 == 0; }

__device__ __forceinline__ bool IsFinite(float x) { return (x - x) == 0.0f; }

// Online (max, sum of exp) merge; -inf on either side means "empty". One float64 exp: the side
// holding the larger max keeps its sum as it is.
__device__ __forceinline__ void MergeMaxSum(float& m, double& s, float m2, double s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  if (m >= m2) {
    s += s2 * exp(static_cast<double>(m2) - m);
  } else {
    s = s * exp(static_cast<double>(m) - m2) + s2;
    m = m2;
  }
}

// (max, sum-exp) over the 32 lanes of a warp: every lane ends with the same pair (xor butterfly).
__device__ __forceinline__ void WarpMaxSum(float& m, double& s) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(kFullWarp, m, o);
    const double s2 = __shfl_xor_sync(kFullWarp, s, o);
    MergeMaxSum(m, s, m2, s2);
  }
}

// Block-wide (max, sum-exp): every thread returns the same pair. sh: 2 * kWarps doubles.
// Each warp merges its lanes, then warp 0 alone merges the kWarps partial pairs (4 butterfly rounds
// instead of every thread folding all of them) and publishes the result.
__device__ __forceinline__ void BlockMaxSum(float& m, double& s, double* sh) {
  WarpMaxSum(m, s);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // sh may still be read from the previous reduction
  if (lane == 0) {
    sh[warp] = m;
    sh[kWarps + warp] = s;
  }
  __syncthreads();
  if (warp == 0) {
    m = lane < kWarps ? static_cast<float>(sh[lane]) : -INFINITY;
    s = lane < kWarps ? sh[kWarps + lane] : 0.0;
    WarpMaxSum(m, s);
    if (lane == 0) {
      sh[0] = m;
      sh[kWarps] = s;
    }
  }
  __syncthreads();
  m = static_cast<float>(sh[0]);
  s = sh[kWarps];
}

// Block-wide sum of a double: every thread returns the same value. sh: kWarps doubles.
__device__ __forceinline__ double BlockSum(double v, double* sh) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullWarp, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // sh may still be read from the previous reduction
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  double t = 0.0;
  for (int w = 0; w < kWarps; ++w) t += sh[w];
  return t;
}

// Zeroes one row of n elements (masked rows).
template <typename T>
__device__ __forceinline__ void ZeroRow(T* g, size_t n) {
  for (size_t i = threadIdx.x; i < n; i += kThreads) g[i] = T(0);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
