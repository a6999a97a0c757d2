// Fused policy-gradient loss (DESIGN 4), CUDA path: one block per row, two passes over the row.
//   logits [rows, vocab] fp32|bf16 -> grad [rows, vocab] (same dtype), rowLoss/rowClipped [rows]
// Pass 1: per-thread online max/sum-exp (16-byte loads), merged across the block; the row
// coefficient comes from loss_math.h (the same code as the CPU path); pass 2 writes
// grad_u = exp(z_u - max) * (-w / sum), then grad_a = w * (1 - p_a).
// Host side: chunks of rows through pinned staging and two streams (common/cuda_workspace.cuh).
#include <mutex>
#include <string>

#include "common/cuda_workspace.cuh"
#include "loss/cuda_common.cuh"
#include "loss/loss_cuda.h"

namespace xopd {
namespace loss {
namespace cuda {
using xopd::cuda::Chunk;
using xopd::cuda::DeviceBuffer;
using xopd::cuda::Packing;
using xopd::cuda::PinnedBuffer;
namespace {

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) PolicyGradientKernel(
    const T* __restrict__ logits, size_t vocab, const int32_t* __restrict__ actions, const float* __restrict__ adv,
    const uint8_t* __restrict__ mask, const float* __restrict__ old, PgParams P, double invKept, T* __restrict__ grad,
    double* __restrict__ rowLoss, int32_t* __restrict__ rowClipped, unsigned long long* __restrict__ badRow, size_t firstRow) {
  __shared__ double sh[2 * kWarps];
  __shared__ double coef[2];
  const size_t r = blockIdx.x;
  const T* z = logits + r * vocab;
  T* g = grad + r * vocab;
  if (mask && !mask[r]) {
    ZeroRow(g, vocab);
    if (threadIdx.x == 0) {
      rowLoss[r] = 0.0;
      rowClipped[r] = 0;
    }
    return;
  }
  // ---- pass 1: max and sum of exp ----
  float m = -INFINITY;
  double s = 0.0;  // per-thread sums of hundreds of terms: float64 keeps 1/sum exact to fp32
  bool bad = false;
  if (VEC) {
    constexpr int N = Vec<T>::N;
    for (size_t i = static_cast<size_t>(threadIdx.x) * N; i < vocab; i += static_cast<size_t>(kThreads) * N) {
      float x[N];
      Vec<T>::Load(z, i, x);
      float lm = x[0];
#pragma unroll
      for (int k = 0; k < N; ++k) {
        bad |= !IsFinite(x[k]);
        lm = fmaxf(lm, x[k]);
      }
      if (lm > m) {
        s *= expf(m - lm);
        m = lm;
      }
#pragma unroll
      for (int k = 0; k < N; ++k) s += expf(x[k] - m);
    }
  } else {
    for (size_t i = threadIdx.x; i < vocab; i += kThreads) {
      const float x = LoadF(z, i);
      bad |= !IsFinite(x);
      if (x > m) {
        s *= expf(m - x);
        m = x;
      }
      s += expf(x - m);
    }
  }
  if (__syncthreads_or(bad)) {
    if (threadIdx.x == 0) atomicMin(badRow, static_cast<unsigned long long>(firstRow + r));
    return;
  }
  double sum = s;
  BlockMaxSum(m, sum, sh);

  // ---- row coefficient (shared with the CPU path) ----
  if (threadIdx.x == 0) {
    const int32_t a = actions[r];
    const double logp = static_cast<double>(LoadF(z, a)) - m - log(sum);
    const PgTerm t = PolicyGradientTerm(logp, adv[r], old ? old[r] : 0.0, P);
    const double w = t.dlogp * invKept;
    coef[0] = w;
    coef[1] = logp;
    rowLoss[r] = t.loss;
    rowClipped[r] = t.clipped;
  }
  __syncthreads();
  const double w = coef[0];
  const float c = w == 0.0 ? 0.0f : static_cast<float>(-w / sum);

  // ---- pass 2: grad_u = exp(z_u - max) * c ----
  if (VEC) {
    constexpr int N = Vec<T>::N;
    for (size_t i = static_cast<size_t>(threadIdx.x) * N; i < vocab; i += static_cast<size_t>(kThreads) * N) {
      float x[N];
      Vec<T>::Load(z, i, x);
#pragma unroll
      for (int k = 0; k < N; ++k) x[k] = expf(x[k] - m) * c;
      Vec<T>::Store(g, i, x);
    }
  } else {
    for (size_t i = threadIdx.x; i < vocab; i += kThreads) StoreF(g, i, expf(LoadF(z, i) - m) * c);
  }
  __syncthreads();  // the action's entry is overwritten after pass 2 wrote it
  if (threadIdx.x == 0) StoreF(g, actions[r], w == 0.0 ? 0.0f : static_cast<float>(-w * expm1(coef[1])));
}

// One pipeline slot: device buffers and their pinned staging.
struct PolicySlot {
  DeviceBuffer logits, grad, in, out;
  PinnedBuffer hLogits, hGrad, hIn, hOut;
  template <typename D, typename H>
  void ForEach(D onDevice, H onPinned) {
    onDevice(logits);
    onDevice(grad);
    onDevice(in);
    onDevice(out);
    onPinned(hLogits);
    onPinned(hGrad);
    onPinned(hIn);
    onPinned(hOut);
  }
};

xopd::cuda::Workspace<PolicySlot>& Ws() {
  static auto* w = new xopd::cuda::Workspace<PolicySlot>();  // lives as long as the process
  return *w;
}

// Where each per-row array sits in a slot's packed buffers, for chunks of at most R rows.
struct PolicyLayout {
  size_t actions, adv, mask, old, inBytes;
  size_t rowLoss, rowClipped, bad, outBytes;
  explicit PolicyLayout(size_t R) {
    Packing in, out;
    actions = in.Add(R * 4);
    adv = in.Add(R * 4);
    mask = in.Add(R);
    old = in.Add(R * 4);
    inBytes = in.bytes;
    rowLoss = out.Add(R * 8);
    rowClipped = out.Add(R * 4);
    bad = out.Add(8);
    outBytes = out.bytes;
  }
};

template <typename T>
std::string Run(const PolicyGradientArgs& a, const RowOutputs& o, int64_t* badRow) {
  auto& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  std::string err = ws.Bind();
  if (!err.empty()) return err;
  const size_t rows = a.logits.rows, vocab = a.logits.vocab, rowBytes = vocab * sizeof(T);
  const size_t perRow = 2 * rowBytes + 4 + 4 + 1 + 4 + 8 + 4 + 32;  // logits, gradient, per-row arrays (and padding)
  size_t budget = 0;
  if (!(err = xopd::cuda::DeviceBudget(ws.DeviceBytes(), &budget)).empty()) return err;
  std::vector<Chunk> chunks;
  size_t R = 0, E = 0;
  for (;;) {  // a failed allocation (memory taken by others meanwhile) halves the chunks
    if (!(err = xopd::cuda::PlanChunks(rows, perRow, nullptr, 0, budget / 2, &chunks)).empty()) return err;
    xopd::cuda::ChunkMaxima(chunks, &R, &E);
    const PolicyLayout L(R);
    cudaError_t e = cudaSuccess;
    for (PolicySlot& s : ws.slot) {
      for (auto [buf, n] : {std::pair<DeviceBuffer*, size_t>{&s.logits, R * rowBytes}, {&s.grad, R * rowBytes}, {&s.in, L.inBytes},
                            {&s.out, L.outBytes}})
        if (e == cudaSuccess) e = buf->Reserve(n);
      for (auto [buf, n] : {std::pair<PinnedBuffer*, size_t>{&s.hLogits, R * rowBytes}, {&s.hGrad, R * rowBytes}, {&s.hIn, L.inBytes},
                            {&s.hOut, L.outBytes}})
        if (e == cudaSuccess) e = buf->Reserve(n);
    }
    if (e == cudaSuccess) break;
    ws.Release();
    if (e != cudaErrorMemoryAllocation || R == 1) return xopd::cuda::AllocationError("the policy gradient's device workspace", 2 * R * perRow, e);
    budget /= 2;
  }
  const PolicyLayout L(R);
  xopd::cuda::SlotStreams streams;
  if (!(err = streams.Create()).empty()) return err;
  auto vectorKernel = PolicyGradientKernel<T, true>;
  auto scalarKernel = PolicyGradientKernel<T, false>;
  const bool vec = RowsVectorizable<T>(vocab);

  auto stage = [&](size_t c, int slot) -> std::string {
    const Chunk& ch = chunks[c];
    PolicySlot& s = ws.slot[slot];
    cudaStream_t st = streams.s[slot];
    const size_t nr = ch.r1 - ch.r0;
    xopd::cuda::HostCopy(s.hLogits.ptr, static_cast<const char*>(a.logits.data) + ch.r0 * rowBytes, nr * rowBytes);
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.logits.ptr, s.hLogits.ptr, nr * rowBytes, cudaMemcpyHostToDevice, st));
    std::memcpy(s.hIn.as<int32_t>(L.actions), a.actions + ch.r0, nr * 4);
    std::memcpy(s.hIn.as<float>(L.adv), a.advantages + ch.r0, nr * 4);
    if (a.mask) std::memcpy(s.hIn.as<uint8_t>(L.mask), a.mask + ch.r0, nr);
    if (a.oldLogprobs) std::memcpy(s.hIn.as<float>(L.old), a.oldLogprobs + ch.r0, nr * 4);
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.in.ptr, s.hIn.ptr, L.inBytes, cudaMemcpyHostToDevice, st));
    XOPD_CUDA_TRY(cudaMemsetAsync(s.out.as<char>(L.bad), 0xFF, 8, st));
    const uint8_t* dMask = a.mask ? s.in.as<uint8_t>(L.mask) : nullptr;
    const float* dOld = a.oldLogprobs ? s.in.as<float>(L.old) : nullptr;
    auto go = [&](auto kernel) {
      XOPD_LAUNCH(kernel, dim3(static_cast<unsigned>(nr)), dim3(kThreads), 0, st)(
          s.logits.as<T>(), vocab, s.in.as<int32_t>(L.actions), s.in.as<float>(L.adv), dMask, dOld, a.params, o.invKept, s.grad.as<T>(),
          s.out.as<double>(L.rowLoss), s.out.as<int32_t>(L.rowClipped), s.out.as<unsigned long long>(L.bad), ch.r0);
    };
    if (vec) go(vectorKernel);
    else go(scalarKernel);
    XOPD_CUDA_TRY(cudaGetLastError());
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.hGrad.ptr, s.grad.ptr, nr * rowBytes, cudaMemcpyDeviceToHost, st));
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.hOut.ptr, s.out.ptr, L.outBytes, cudaMemcpyDeviceToHost, st));
    return "";
  };
  auto finish = [&](size_t c, int slot) -> std::string {
    const Chunk& ch = chunks[c];
    PolicySlot& s = ws.slot[slot];
    XOPD_CUDA_TRY(cudaStreamSynchronize(streams.s[slot]));
    const unsigned long long bad = *s.hOut.as<unsigned long long>(L.bad);
    if (bad != ~0ull) {
      *badRow = static_cast<int64_t>(bad);
      return "logits hold NaN or an infinite value";
    }
    const size_t nr = ch.r1 - ch.r0;
    xopd::cuda::HostCopy(static_cast<char*>(a.grad) + ch.r0 * rowBytes, s.hGrad.ptr, nr * rowBytes);
    std::memcpy(o.rowLoss + ch.r0, s.hOut.as<double>(L.rowLoss), nr * 8);
    std::memcpy(o.rowClipped + ch.r0, s.hOut.as<int32_t>(L.rowClipped), nr * 4);
    return "";
  };
  return xopd::cuda::RunChunks(chunks.size(), stage, finish);
}

}  // namespace

std::string PolicyGradient(const PolicyGradientArgs& a, const RowOutputs& out, int64_t* badRow) {
  *badRow = -1;
  if (a.logits.rows > 0x7FFFFFFFu) return "too many rows for one call";
  return a.logits.bf16 ? Run<uint16_t>(a, out, badRow) : Run<float>(a, out, badRow);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
