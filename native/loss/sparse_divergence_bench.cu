// Bench only (dev addon): device-resident timings of the fused divergence kernel against an unfused
// two-kernel baseline (softmax written out, then a gradient kernel) and a device-to-device copy of
// the same bytes. No host transfers inside the timed loops.
#include <string>
#include <utility>
#include <vector>

#include "common/cuda_workspace.cuh"
#include "loss/loss_bench.h"
#include "loss/sparse_divergence_cuda.cuh"

namespace xopd {
namespace loss {
namespace cuda {
namespace {

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
  XOPD_DYNAMIC_SHARED(uint32_t, bits);
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
  const float C = static_cast<float>(RowBuckets(pSupport + b, n, probs + b, tail[r], 0.0f, other, Q, w, eBuf + b, hBuf + b, sh, &loss, &shift));
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

// Device buffers of the bench, kept between calls (bench only; one caller at a time).
struct BenchBuffers {
  xopd::cuda::DeviceBuffer logits, grad, softmax, rowPtr, ids, probs, tail, rowLoss, zSupport, eBuf, hBuf, bad;
};
BenchBuffers& Buffers() {
  static BenchBuffers* b = new BenchBuffers();
  return *b;
}

template <typename T>
std::string Bench(size_t rows, size_t vocab, int support, int iters, DeviceTiming* out) {
  BenchBuffers& B = Buffers();
  const size_t nnz = rows * static_cast<size_t>(support), bytes = rows * vocab * sizeof(T), nz = nnz ? nnz : 1;
  for (auto [buf, n] : {std::pair<xopd::cuda::DeviceBuffer*, size_t>{&B.logits, bytes}, {&B.grad, bytes}, {&B.softmax, rows * vocab * 4},
                        {&B.rowPtr, (rows + 1) * 4}, {&B.ids, nz * 4}, {&B.probs, nz * 4}, {&B.tail, rows * 4}, {&B.rowLoss, rows * 8},
                        {&B.zSupport, nz * 4}, {&B.eBuf, nz * 8}, {&B.hBuf, nz * 8}, {&B.bad, 8}}) {
    const cudaError_t e = buf->Reserve(n);
    if (e != cudaSuccess) return xopd::cuda::AllocationError("cudaMalloc", n, e);
  }
  // Targets: `support` ids per row with equal mass and tail 0.2.
  std::vector<int32_t> rowPtr(rows + 1), ids(nnz);
  std::vector<float> probs(nnz, support ? 0.8f / support : 0.0f), tail(rows, support ? 0.2f : 1.0f);
  for (size_t r = 0; r <= rows; ++r) rowPtr[r] = static_cast<int32_t>(r * support);
  for (size_t r = 0; r < rows; ++r)
    for (int k = 0; k < support; ++k) ids[r * support + k] = static_cast<int32_t>((r * 7919 + k * 104729) % vocab);
  XOPD_CUDA_TRY(cudaMemcpy(B.rowPtr.ptr, rowPtr.data(), (rows + 1) * 4, cudaMemcpyHostToDevice));
  if (nnz) {
    XOPD_CUDA_TRY(cudaMemcpy(B.ids.ptr, ids.data(), nnz * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(B.probs.ptr, probs.data(), nnz * 4, cudaMemcpyHostToDevice));
  }
  XOPD_CUDA_TRY(cudaMemcpy(B.tail.ptr, tail.data(), rows * 4, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemset(B.bad.ptr, 0xFF, 8));
  auto fill = FillLogitsKernel<T>;
  XOPD_LAUNCH(fill, dim3(1024), dim3(256), 0, nullptr)(B.logits.as<T>(), rows * vocab);
  XOPD_CUDA_TRY(cudaGetLastError());
  FusedLaunch f;
  f.rows = rows;
  f.vocab = vocab;
  f.logits = B.logits.ptr;
  f.grad = B.grad.ptr;
  f.rowBegin = B.rowPtr.as<int32_t>();
  f.rowEnd = f.rowBegin + 1;
  f.ids = B.ids.as<int32_t>();
  f.probs = B.probs.as<float>();
  f.tail = B.tail.as<float>();
  f.zSupport = B.zSupport.as<float>();
  f.eBuf = B.eBuf.as<double>();
  f.hBuf = B.hBuf.as<double>();
  f.rowLoss = B.rowLoss.as<double>();
  f.badRow = B.bad.as<unsigned long long>();
  f.P.kind = kForwardKL;
  f.invKept = 1.0 / rows;
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
  std::string err = timed([&]() { return LaunchFused<T>(f, nullptr); }, &out->fusedSeconds);
  if (err.empty()) {
    size_t smem = 0;
    auto softmax = SoftmaxKernel<T>;
    auto gradFromSoftmax = GradFromSoftmaxKernel<T>;
    err = SharedMemoryFor(reinterpret_cast<const void*>(gradFromSoftmax), vocab, &smem);
    if (err.empty())
      err = timed([&]() -> std::string {
        XOPD_LAUNCH(softmax, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, nullptr)(B.logits.as<T>(), vocab, 1.0f, B.softmax.as<float>());
        XOPD_LAUNCH(gradFromSoftmax, dim3(static_cast<unsigned>(rows)), dim3(kThreads), smem, nullptr)(
            B.softmax.as<float>(), vocab, B.rowPtr.as<int32_t>(), B.ids.as<int32_t>(), B.probs.as<float>(), B.tail.as<float>(), f.P,
            f.invKept, B.grad.as<T>(), B.eBuf.as<double>(), B.hBuf.as<double>(), B.zSupport.as<float>());
        XOPD_CUDA_TRY(cudaGetLastError());
        return "";
      }, &out->unfusedSeconds);
  }
  if (err.empty())
    err = timed([&]() -> std::string {
      XOPD_CUDA_TRY(cudaMemcpyAsync(B.grad.ptr, B.logits.ptr, bytes, cudaMemcpyDeviceToDevice, nullptr));
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

std::string BenchSparseDivergence(size_t rows, size_t vocab, bool bf16, int supportPerRow, int iters, DeviceTiming* out) {
  if (supportPerRow < 0 || static_cast<size_t>(supportPerRow) > vocab) return "support per row must be in [0, vocab]";
  return bf16 ? Bench<uint16_t>(rows, vocab, supportPerRow, iters, out) : Bench<float>(rows, vocab, supportPerRow, iters, out);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
