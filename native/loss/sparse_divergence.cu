// Fused bucketed divergence (DESIGN 6), CUDA path: one block per row.
//   logits [rows, vocab] fp32|bf16, CSR targets -> grad [rows, vocab] (same dtype), rowLoss [rows]
// The row's support ids are set in a bitmask in shared memory, so pass 1 sums exp over the
// non-support tokens DIRECTLY (p_other is never 1 - rest). The support's exps, the floored q and
// the bucket terms are computed by the block in parallel with Bucket() from loss_math.h (the same
// code as the CPU path); pass 2 writes grad_u = exp(z_u/T - max) * C, then the support entries.
#include <mutex>
#include <string>

#include "loss/loss_cuda.h"
#include "loss/sparse_divergence_cuda.cuh"

namespace xopd {
namespace loss {
namespace cuda {
namespace {

// Pass 1 over one row: per-thread (max, sum exp) over the NON-support tokens, merged across the
// block (max -inf and sum 0 when the support is the whole row). The max is theirs alone: with the
// row's max, a support token ~87 logits above the rest would underflow every exp of "other".
template <typename T, bool VEC>
__device__ __forceinline__ bool MaxSumOther(const T* z, size_t vocab, float invT, const uint32_t* bits, float& mOut,
                                            double& sOut, double* sh) {
  float m = -INFINITY;
  double s = 0.0;  // per-thread sums of hundreds of terms: float64 keeps 1/sum exact to fp32
  bool bad = false;
  if (VEC) {
    constexpr int N = Vec<T>::N;  // 4 or 8: a vector never straddles a 32-bit word of the bitmask
    for (size_t i = static_cast<size_t>(threadIdx.x) * N; i < vocab; i += static_cast<size_t>(kThreads) * N) {
      float x[N];
      Vec<T>::Load(z, i, x);
      const uint32_t sel = (bits[i >> 5] >> (i & 31)) & ((1u << N) - 1u);
      float lm = -INFINITY;
#pragma unroll
      for (int k = 0; k < N; ++k) {
        x[k] *= invT;
        bad |= !IsFinite(x[k]);
        if (!((sel >> k) & 1u)) lm = fmaxf(lm, x[k]);
      }
      if (lm > m) {
        s *= expf(m - lm);
        m = lm;
      }
#pragma unroll
      for (int k = 0; k < N; ++k)
        if (!((sel >> k) & 1u)) s += expf(x[k] - m);
    }
  } else {
    for (size_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = LoadF(z, i) * invT;
      bad |= !IsFinite(x);
      if (InSupport(bits, i)) continue;
      if (x > m) {
        s *= expf(m - x);
        m = x;
      }
      s += expf(x - m);
    }
  }
  if (__syncthreads_or(bad)) return false;
  BlockMaxSum(m, s, sh);
  mOut = m;
  sOut = s;
  return true;
}

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) SparseDivergenceKernel(
    const T* __restrict__ logits, size_t vocab, const int32_t* __restrict__ rowPtr, const int32_t* __restrict__ ids,
    const float* __restrict__ probs, const float* __restrict__ tail, const uint8_t* __restrict__ mask, DivergenceParams P,
    double invKept, T* __restrict__ grad, double* __restrict__ rowLoss, float* __restrict__ zSupport,
    double* __restrict__ eBuf, double* __restrict__ hBuf, unsigned long long* __restrict__ badRow) {
  extern __shared__ uint32_t bits[];  // ceil(vocab / 32) words: the row's support
  __shared__ double sh[2 * kWarps];
  const size_t r = blockIdx.x;
  const T* z = logits + r * vocab;
  T* g = grad + r * vocab;
  if (mask && !mask[r]) {
    ZeroRow(g, vocab);
    if (threadIdx.x == 0) rowLoss[r] = 0.0;
    return;
  }
  const int b = rowPtr[r], n = rowPtr[r + 1] - rowPtr[r];
  const size_t words = (vocab + 31) / 32;
  for (size_t i = threadIdx.x; i < words; i += kThreads) bits[i] = 0u;
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const int32_t id = ids[b + k];
    atomicOr(&bits[id >> 5], 1u << (id & 31));
    zSupport[b + k] = LoadF(z, id);
  }
  __syncthreads();
  const float invT = static_cast<float>(P.invTemp);
  float m;
  double other;
  if (!MaxSumOther<T, VEC>(z, vocab, invT, bits, m, other, sh)) {
    if (threadIdx.x == 0) atomicMin(badRow, static_cast<unsigned long long>(r));
    return;
  }
  double loss;
  const double w = invKept * P.invTemp;
  const float C = static_cast<float>(RowBuckets(zSupport, b, n, probs, tail[r], m, other, P, w, eBuf, hBuf, sh, &loss, &m));
  // ---- pass 2 ----
  if (VEC) {
    constexpr int N = Vec<T>::N;
    for (size_t i = static_cast<size_t>(threadIdx.x) * N; i < vocab; i += static_cast<size_t>(kThreads) * N) {
      float x[N];
      Vec<T>::Load(z, i, x);
#pragma unroll
      for (int k = 0; k < N; ++k) x[k] = expf(x[k] * invT - m) * C;
      Vec<T>::Store(g, i, x);
    }
  } else {
    for (size_t i = threadIdx.x; i < vocab; i += kThreads) StoreF(g, i, expf(LoadF(z, i) * invT - m) * C);
  }
  __syncthreads();  // support entries are overwritten after pass 2 wrote them
  for (int k = threadIdx.x; k < n; k += kThreads) StoreF(g, ids[b + k], static_cast<float>(hBuf[b + k]));
  if (threadIdx.x == 0) rowLoss[r] = loss;
}

template <typename T>
std::string Run(const SparseDivergenceArgs& a, const RowOutputs& o, int64_t* badRow) {
  Workspace& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  const size_t rows = a.logits.rows, vocab = a.logits.vocab;
  const size_t bytes = rows * vocab * sizeof(T), nnz = a.nnz;
  std::string err = ReserveAll(ws, rows, vocab, sizeof(T), nnz);
  if (!err.empty()) return err;
  XOPD_CUDA_TRY(cudaMemcpy(ws.logits.ptr, a.logits.data, bytes, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemcpy(ws.rowPtr.ptr, a.rowPtr, (rows + 1) * 4, cudaMemcpyHostToDevice));
  if (nnz) {
    XOPD_CUDA_TRY(cudaMemcpy(ws.ids.ptr, a.ids, nnz * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(ws.probs.ptr, a.probs, nnz * 4, cudaMemcpyHostToDevice));
  }
  XOPD_CUDA_TRY(cudaMemcpy(ws.tail.ptr, a.tail, rows * 4, cudaMemcpyHostToDevice));
  if (a.mask) XOPD_CUDA_TRY(cudaMemcpy(ws.mask.ptr, a.mask, rows, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemset(ws.bad.ptr, 0xFF, 8));
  err = LaunchFused<T>(ws, rows, vocab, a.mask ? ws.mask.as<uint8_t>() : nullptr, a.params, o.invKept);
  if (!err.empty()) return err;
  unsigned long long bad = 0;
  XOPD_CUDA_TRY(cudaMemcpy(&bad, ws.bad.ptr, 8, cudaMemcpyDeviceToHost));
  if (bad != ~0ull) {
    *badRow = static_cast<int64_t>(bad);
    return "logits hold NaN or an infinite value";
  }
  XOPD_CUDA_TRY(cudaMemcpy(a.grad, ws.grad.ptr, bytes, cudaMemcpyDeviceToHost));
  XOPD_CUDA_TRY(cudaMemcpy(o.rowLoss, ws.rowLoss.ptr, rows * 8, cudaMemcpyDeviceToHost));
  return "";
}

}  // namespace

Workspace& Ws() {
  static Workspace* w = new Workspace();  // never freed: lives as long as the process
  return *w;
}

std::string ReserveAll(Workspace& ws, size_t rows, size_t vocab, size_t elem, size_t nnz) {
  std::string err;
  const size_t bytes = rows * vocab * elem, nz = nnz == 0 ? 1 : nnz;
  if (!(err = ws.logits.Reserve(bytes)).empty() || !(err = ws.grad.Reserve(bytes)).empty() ||
      !(err = ws.rowPtr.Reserve((rows + 1) * 4)).empty() || !(err = ws.ids.Reserve(nz * 4)).empty() ||
      !(err = ws.probs.Reserve(nz * 4)).empty() || !(err = ws.tail.Reserve(rows * 4)).empty() ||
      !(err = ws.mask.Reserve(rows)).empty() || !(err = ws.rowLoss.Reserve(rows * 8)).empty() ||
      !(err = ws.zSupport.Reserve(nz * 4)).empty() || !(err = ws.eBuf.Reserve(nz * 8)).empty() ||
      !(err = ws.hBuf.Reserve(nz * 8)).empty() || !(err = ws.bad.Reserve(8)).empty())
    return err;
  return "";
}

std::string SharedMemoryFor(const void* kernel, size_t vocab, size_t* bytes) {
  *bytes = ((vocab + 31) / 32) * 4;
  int dev = 0, maxOptin = 0;
  XOPD_CUDA_TRY(cudaGetDevice(&dev));
  XOPD_CUDA_TRY(cudaDeviceGetAttribute(&maxOptin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  const size_t statics = 2 * kWarps * sizeof(double) + 64;
  if (*bytes + statics > static_cast<size_t>(maxOptin))
    return "vocab " + std::to_string(vocab) + " is too large for the CUDA divergence kernel's shared-memory support mask";
  if (*bytes > 48 * 1024) XOPD_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(*bytes)));
  return "";
}

template <typename T>
std::string LaunchFused(const Workspace& ws, size_t rows, size_t vocab, const uint8_t* dMask, const DivergenceParams& P, double invKept) {
  const bool vec = RowsVectorizable<T>(vocab);
  const void* kernel = vec ? reinterpret_cast<const void*>(SparseDivergenceKernel<T, true>) : reinterpret_cast<const void*>(SparseDivergenceKernel<T, false>);
  size_t smem;
  std::string err = SharedMemoryFor(kernel, vocab, &smem);
  if (!err.empty()) return err;
  auto go = [&](auto k) {
    k<<<static_cast<unsigned>(rows), kThreads, smem>>>(ws.logits.as<T>(), vocab, ws.rowPtr.as<int32_t>(), ws.ids.as<int32_t>(),
                                                      ws.probs.as<float>(), ws.tail.as<float>(), dMask, P, invKept, ws.grad.as<T>(),
                                                      ws.rowLoss.as<double>(), ws.zSupport.as<float>(), ws.eBuf.as<double>(),
                                                      ws.hBuf.as<double>(), ws.bad.as<unsigned long long>());
  };
  if (vec) go(SparseDivergenceKernel<T, true>);
  else go(SparseDivergenceKernel<T, false>);
  XOPD_CUDA_TRY(cudaGetLastError());
  return "";
}

template std::string LaunchFused<float>(const Workspace&, size_t, size_t, const uint8_t*, const DivergenceParams&, double);
template std::string LaunchFused<uint16_t>(const Workspace&, size_t, size_t, const uint8_t*, const DivergenceParams&, double);

std::string SparseDivergence(const SparseDivergenceArgs& a, const RowOutputs& out, int64_t* badRow) {
  *badRow = -1;
  if (a.logits.rows > 0x7FFFFFFFu) return "too many rows for one launch";
  return a.logits.bf16 ? Run<uint16_t>(a, out, badRow) : Run<float>(a, out, badRow);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
