// What the fused divergence's CUDA kernel shares with its device-resident bench
// (sparse_divergence_bench.cu, dev addon and gpu/ harness only): the per-row bucket math on the
// device, and the launch of the fused kernel on data already on the device.
#pragma once
#include <string>

#include "loss/cuda_common.cuh"
#include "loss/loss.h"

namespace xopd {
namespace loss {
namespace cuda {

// Whether id i is set in a row's support bitmask.
__device__ __forceinline__ bool InSupport(const uint32_t* bits, size_t i) { return (bits[i >> 5] >> (i & 31)) & 1u; }

// Bucket math for one row, in parallel over its n support entries (every pointer at the row's
// first entry); returns C (the per-token coefficient of "other") and leaves each support entry's
// final gradient in hBuf. Same formulas as the CPU.
__device__ __forceinline__ double RowBuckets(const float* zSupport /*gathered z_s*/, int n, const float* probs, float tail,
                                             float mo, double other, const DivergenceParams& P, double w, double* eBuf,
                                             double* hBuf, double* sh, double* lossOut, float* shiftOut) {
  // M = max(mo, support max); "other" is brought to M's scale in float64 (so = e^(mo - M)).
  float M = mo;
  for (int k = threadIdx.x; k < n; k += kThreads) M = fmaxf(M, static_cast<float>(static_cast<double>(zSupport[k]) * P.invTemp));
  double unused = 0.0;
  BlockMaxSum(M, unused, sh);
  const double so = other > 0.0 ? exp(static_cast<double>(mo) - M) : 0.0;
  double sumE = 0.0, sumQ = 0.0;
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const double e = exp(static_cast<double>(zSupport[k]) * P.invTemp - M);
    eBuf[k] = e;
    sumE += e;
    sumQ += FlooredQ(P.kind, probs[k], P.epsilon);
  }
  sumE = BlockSum(sumE, sh);
  sumQ = BlockSum(sumQ, sh);
  const double Z = other * so + sumE;
  const double qo = FlooredQ(P.kind, tail, P.epsilon);
  const double norm = P.kind == kForwardKL ? 1.0 : 1.0 / (sumQ + qo);
  double loss = 0.0, H = 0.0;
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const BucketTerm t = Bucket(P.kind, P.beta, eBuf[k] / Z, FlooredQ(P.kind, probs[k], P.epsilon) * norm);
    hBuf[k] = t.h;
    loss += t.loss;
    H += t.h;
  }
  loss = BlockSum(loss, sh);
  H = BlockSum(H, sh);
  const BucketTerm to = Bucket(P.kind, P.beta, other * so / Z, qo * norm);
  loss += to.loss;
  H += to.h;
  for (int k = threadIdx.x; k < n; k += kThreads) hBuf[k] = (hBuf[k] - eBuf[k] / Z * H) * w;  // final support grads
  *lossOut = loss;
  // grad_u = e^(z_u/T - mo) * C for u in "other" (no such u: pass 2 writes only overwritten entries)
  *shiftOut = other > 0.0 ? mo : M;
  return ((other > 0.0 ? to.h / other : 0.0) - so * H / Z) * w;
}

// One launch of the fused kernel over rows [0, rows) of a chunk; every pointer is device memory.
struct FusedLaunch {
  size_t rows = 0, vocab = 0;
  const void* logits = nullptr;  // [rows, vocab] T
  void* grad = nullptr;          // [rows, vocab] T
  // Row r's target entries are k in [rowBegin[r], rowEnd[r]): its ids/probs at [k - idsBase], its
  // scratch (gathered logits, exps, support gradients) at [k - scratchBase].
  const int32_t* rowBegin = nullptr;
  const int32_t* rowEnd = nullptr;
  int64_t idsBase = 0, scratchBase = 0;
  const int32_t* ids = nullptr;
  const float* probs = nullptr;
  const float* tail = nullptr;   // [rows]
  const uint8_t* mask = nullptr; // [rows] or null
  float* zSupport = nullptr;
  double* eBuf = nullptr;
  double* hBuf = nullptr;
  double* rowLoss = nullptr;     // [rows]
  unsigned long long* badRow = nullptr;  // atomicMin of firstRow + r over rows holding NaN/Inf
  size_t firstRow = 0;
  DivergenceParams P;
  double invKept = 0;
};

// The dynamic shared memory a row's support bitmask needs (opted in above 48 KiB); "" or why not.
std::string SharedMemoryFor(const void* kernel, size_t vocab, size_t* bytes);
// Launches the fused kernel on stream (T = float, or uint16_t for bf16).
template <typename T>
std::string LaunchFused(const FusedLaunch& f, cudaStream_t stream);

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
