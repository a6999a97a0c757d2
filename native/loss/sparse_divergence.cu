// Fused bucketed divergence (DESIGN 6), CUDA path: one block per row.
//   logits [rows, vocab] fp32|bf16, CSR targets -> grad [rows, vocab] (same dtype), rowLoss [rows]
// The row's support ids are set in a bitmask in shared memory, so pass 1 sums exp over the
// non-support tokens DIRECTLY (p_other is never 1 - rest). The support's exps, the floored q and
// the bucket terms are computed by the block in parallel with Bucket() from loss_math.h (the same
// code as the CPU path); pass 2 writes grad_u = exp(z_u/T - max) * C, then the support entries.
// Also here: the bench's device-resident timing of this kernel against an unfused two-kernel
// baseline (softmax written out, then a gradient kernel) and a device-to-device copy.
#include <mutex>
#include <vector>

#include "loss/cuda_common.cuh"
#include "loss/loss_cuda.h"

namespace xopd {
namespace loss {
namespace cuda {
namespace {

__device__ __forceinline__ bool InSupport(const uint32_t* bits, size_t i) { return (bits[i >> 5] >> (i & 31)) & 1u; }

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

// Bucket math for one row, in parallel over the support; returns C (the per-token coefficient of
// "other") and leaves each support entry's final gradient in supportGrad. Same formulas as the CPU.
__device__ __forceinline__ double RowBuckets(const float* zSupport /*gathered z_s*/, int b, int n, const float* probs, float tail,
                                             float mo, double other, const DivergenceParams& P, double w, double* eBuf,
                                             double* hBuf, double* sh, double* lossOut, float* shiftOut) {
  // M = max(mo, support max); "other" is brought to M's scale in float64 (so = e^(mo - M)).
  float M = mo;
  for (int k = threadIdx.x; k < n; k += kThreads) M = fmaxf(M, static_cast<float>(static_cast<double>(zSupport[b + k]) * P.invTemp));
  double unused = 0.0;
  BlockMaxSum(M, unused, sh);
  const double so = other > 0.0 ? exp(static_cast<double>(mo) - M) : 0.0;
  double sumE = 0.0, sumQ = 0.0;
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const double e = exp(static_cast<double>(zSupport[b + k]) * P.invTemp - M);
    eBuf[b + k] = e;
    sumE += e;
    sumQ += FlooredQ(P.kind, probs[b + k], P.epsilon);
  }
  sumE = BlockSum(sumE, sh);
  sumQ = BlockSum(sumQ, sh);
  const double Z = other * so + sumE;
  const double qo = FlooredQ(P.kind, tail, P.epsilon);
  const double norm = P.kind == kForwardKL ? 1.0 : 1.0 / (sumQ + qo);
  double loss = 0.0, H = 0.0;
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const BucketTerm t = Bucket(P.kind, P.beta, eBuf[b + k] / Z, FlooredQ(P.kind, probs[b + k], P.epsilon) * norm);
    hBuf[b + k] = t.h;
    loss += t.loss;
    H += t.h;
  }
  loss = BlockSum(loss, sh);
  H = BlockSum(H, sh);
  const BucketTerm to = Bucket(P.kind, P.beta, other * so / Z, qo * norm);
  loss += to.loss;
  H += to.h;
  for (int k = threadIdx.x; k < n; k += kThreads) hBuf[b + k] = (hBuf[b + k] - eBuf[b + k] / Z * H) * w;  // final support grads
  *lossOut = loss;
  // grad_u = e^(z_u/T - mo) * C for u in "other" (no such u: pass 2 writes only overwritten entries)
  *shiftOut = other > 0.0 ? mo : M;
  return ((other > 0.0 ? to.h / other : 0.0) - so * H / Z) * w;
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

// ---- unfused baseline (bench only): softmax written out, then a gradient kernel ----

template <typename T>
__global__ void __launch_bounds__(kThreads) SoftmaxKernel(const T* __restrict__ logits, size_t vocab, float invT, float* __restrict__ probsOut) {
  __shared__ double sh[2 * kWarps];
  const size_t r = blockIdx.x;
  const T* z = logits + r * vocab;
  float m = -INFINITY, s = 0.0f;
  for (size_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = LoadF(z, i) * invT;
    if (x > m) {
      s *= expf(m - x);
      m = x;
    }
    s += expf(x - m);
  }
  double sum = s;
  BlockMaxSum(m, sum, sh);
  const float inv = static_cast<float>(1.0 / sum);
  for (size_t i = threadIdx.x; i < vocab; i += kThreads) probsOut[r * vocab + i] = expf(LoadF(z, i) * invT - m) * inv;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) GradFromSoftmaxKernel(const float* __restrict__ p, size_t vocab, const int32_t* __restrict__ rowPtr,
                                                                  const int32_t* __restrict__ ids, const float* __restrict__ probs,
                                                                  const float* __restrict__ tail, DivergenceParams P, double w,
                                                                  T* __restrict__ grad, double* __restrict__ eBuf, double* __restrict__ hBuf,
                                                                  float* __restrict__ pSupport) {
  extern __shared__ uint32_t bits[];
  __shared__ double sh[2 * kWarps];
  const size_t r = blockIdx.x;
  const float* pr = p + r * vocab;
  const int b = rowPtr[r], n = rowPtr[r + 1] - rowPtr[r];
  const size_t words = (vocab + 31) / 32;
  for (size_t i = threadIdx.x; i < words; i += kThreads) bits[i] = 0u;
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += kThreads) {
    atomicOr(&bits[ids[b + k] >> 5], 1u << (ids[b + k] & 31));
    pSupport[b + k] = logf(pr[ids[b + k]]);  // as a "logit" with max 0 and Z = 1
  }
  __syncthreads();
  double other = 0.0;
  for (size_t i = threadIdx.x; i < vocab; i += kThreads)
    if (!InSupport(bits, i)) other += pr[i];
  other = BlockSum(other, sh);
  DivergenceParams Q = P;
  Q.invTemp = 1.0;
  double loss;
  float shift;  // 0 here: log p <= 0, so M = mo = 0 and e^(z_u - mo) = p_u
  const float C = static_cast<float>(RowBuckets(pSupport, b, n, probs, tail[r], 0.0f, other, Q, w, eBuf, hBuf, sh, &loss, &shift));
  for (size_t i = threadIdx.x; i < vocab; i += kThreads) StoreF(grad + r * vocab, i, pr[i] * C);
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += kThreads) StoreF(grad + r * vocab, ids[b + k], static_cast<float>(hBuf[b + k]));
}

template <typename T>
__global__ void FillLogitsKernel(T* x, size_t n) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    StoreF(x, i, (static_cast<float>(h & 0xFFFFu) / 65536.0f - 0.5f) * 8.0f);
  }
}

struct Workspace {
  std::mutex mu;
  DeviceBuffer logits, grad, rowPtr, ids, probs, tail, mask, rowLoss, zSupport, eBuf, hBuf, bad, softmax;
};

Workspace& Ws() {
  static Workspace* w = new Workspace();
  return *w;
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

template <typename T>
std::string Run(const SparseDivergenceArgs& a) {
  Workspace& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  const size_t bytes = a.rows * a.vocab * sizeof(T), nnz = static_cast<size_t>(a.rowPtr[a.rows]);
  std::string err = ReserveAll(ws, a.rows, a.vocab, sizeof(T), nnz);
  if (!err.empty()) return err;
  XOPD_CUDA_TRY(cudaMemcpy(ws.logits.ptr, a.logits, bytes, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemcpy(ws.rowPtr.ptr, a.rowPtr, (a.rows + 1) * 4, cudaMemcpyHostToDevice));
  if (nnz) {
    XOPD_CUDA_TRY(cudaMemcpy(ws.ids.ptr, a.ids, nnz * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(ws.probs.ptr, a.probs, nnz * 4, cudaMemcpyHostToDevice));
  }
  XOPD_CUDA_TRY(cudaMemcpy(ws.tail.ptr, a.tail, a.rows * 4, cudaMemcpyHostToDevice));
  if (a.mask) XOPD_CUDA_TRY(cudaMemcpy(ws.mask.ptr, a.mask, a.rows, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemset(ws.bad.ptr, 0xFF, 8));
  err = LaunchFused<T>(ws, a.rows, a.vocab, a.mask ? ws.mask.as<uint8_t>() : nullptr, a.params, a.invKept);
  if (!err.empty()) return err;
  unsigned long long bad = 0;
  XOPD_CUDA_TRY(cudaMemcpy(&bad, ws.bad.ptr, 8, cudaMemcpyDeviceToHost));
  if (bad != ~0ull) {
    *a.badRow = static_cast<int64_t>(bad);
    return "logits hold NaN or an infinite value";
  }
  XOPD_CUDA_TRY(cudaMemcpy(a.grad, ws.grad.ptr, bytes, cudaMemcpyDeviceToHost));
  XOPD_CUDA_TRY(cudaMemcpy(a.rowLoss, ws.rowLoss.ptr, a.rows * 8, cudaMemcpyDeviceToHost));
  return "";
}

template <typename T>
std::string Bench(size_t rows, size_t vocab, int support, int iters, DeviceTiming* out) {
  Workspace& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  const size_t nnz = rows * static_cast<size_t>(support), bytes = rows * vocab * sizeof(T);
  std::string err = ReserveAll(ws, rows, vocab, sizeof(T), nnz);
  if (!err.empty()) return err;
  if (!(err = ws.softmax.Reserve(rows * vocab * sizeof(float))).empty()) return err;
  // Targets: `support` ids per row with equal mass and tail 0.2.
  std::vector<int32_t> rowPtr(rows + 1), ids(nnz);
  std::vector<float> probs(nnz, support ? 0.8f / support : 0.0f), tail(rows, support ? 0.2f : 1.0f);
  for (size_t r = 0; r <= rows; ++r) rowPtr[r] = static_cast<int32_t>(r * support);
  for (size_t r = 0; r < rows; ++r)
    for (int k = 0; k < support; ++k) ids[r * support + k] = static_cast<int32_t>((r * 7919 + k * 104729) % vocab);
  XOPD_CUDA_TRY(cudaMemcpy(ws.rowPtr.ptr, rowPtr.data(), (rows + 1) * 4, cudaMemcpyHostToDevice));
  if (nnz) {
    XOPD_CUDA_TRY(cudaMemcpy(ws.ids.ptr, ids.data(), nnz * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(ws.probs.ptr, probs.data(), nnz * 4, cudaMemcpyHostToDevice));
  }
  XOPD_CUDA_TRY(cudaMemcpy(ws.tail.ptr, tail.data(), rows * 4, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemset(ws.bad.ptr, 0xFF, 8));
  FillLogitsKernel<T><<<1024, 256>>>(ws.logits.as<T>(), rows * vocab);
  XOPD_CUDA_TRY(cudaGetLastError());
  DivergenceParams P;
  P.kind = kForwardKL;
  const double invKept = 1.0 / rows;
  cudaEvent_t t0, t1;
  XOPD_CUDA_TRY(cudaEventCreate(&t0));
  XOPD_CUDA_TRY(cudaEventCreate(&t1));
  auto timed = [&](auto body, double* seconds) -> std::string {
    std::string e = body();  // warm-up
    if (!e.empty()) return e;
    XOPD_CUDA_TRY(cudaEventRecord(t0));
    for (int i = 0; i < iters; ++i) {
      e = body();
      if (!e.empty()) return e;
    }
    XOPD_CUDA_TRY(cudaEventRecord(t1));
    XOPD_CUDA_TRY(cudaEventSynchronize(t1));
    float ms = 0;
    XOPD_CUDA_TRY(cudaEventElapsedTime(&ms, t0, t1));
    *seconds = ms / 1000.0 / iters;
    return "";
  };
  err = timed([&]() { return LaunchFused<T>(ws, rows, vocab, nullptr, P, invKept); }, &out->fusedSeconds);
  if (err.empty()) {
    size_t smem = 0;
    err = SharedMemoryFor(reinterpret_cast<const void*>(GradFromSoftmaxKernel<T>), vocab, &smem);
    if (err.empty())
      err = timed([&]() -> std::string {
        SoftmaxKernel<T><<<static_cast<unsigned>(rows), kThreads>>>(ws.logits.as<T>(), vocab, 1.0f, ws.softmax.as<float>());
        GradFromSoftmaxKernel<T><<<static_cast<unsigned>(rows), kThreads, smem>>>(
            ws.softmax.as<float>(), vocab, ws.rowPtr.as<int32_t>(), ws.ids.as<int32_t>(), ws.probs.as<float>(), ws.tail.as<float>(), P,
            invKept, ws.grad.as<T>(), ws.eBuf.as<double>(), ws.hBuf.as<double>(), ws.zSupport.as<float>());
        XOPD_CUDA_TRY(cudaGetLastError());
        return "";
      }, &out->unfusedSeconds);
  }
  if (err.empty())
    err = timed([&]() -> std::string {
      XOPD_CUDA_TRY(cudaMemcpy(ws.grad.ptr, ws.logits.ptr, bytes, cudaMemcpyDeviceToDevice));
      return "";
    }, &out->copySeconds);
  cudaEventDestroy(t0);
  cudaEventDestroy(t1);
  if (!err.empty()) return err;
  cudaDeviceProp prop;
  int dev = 0;
  XOPD_CUDA_TRY(cudaGetDevice(&dev));
  XOPD_CUDA_TRY(cudaGetDeviceProperties(&prop, dev));
  out->device = prop.name;
  return "";
}

}  // namespace

std::string SparseDivergence(const SparseDivergenceArgs& a) {
  *a.badRow = -1;
  if (a.rows > 0x7FFFFFFFu) return "too many rows for one launch";
  return a.bf16 ? Run<uint16_t>(a) : Run<float>(a);
}

std::string BenchSparseDivergence(size_t rows, size_t vocab, bool bf16, int supportPerRow, int iters, DeviceTiming* out) {
  if (supportPerRow < 0 || static_cast<size_t>(supportPerRow) > vocab) return "support per row must be in [0, vocab]";
  return bf16 ? Bench<uint16_t>(rows, vocab, supportPerRow, iters, out) : Bench<float>(rows, vocab, supportPerRow, iters, out);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
