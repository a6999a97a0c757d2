// Fused policy-gradient loss (DESIGN 4), CUDA path: one block per row, two passes over the row.
//   logits [rows, vocab] fp32|bf16 -> grad [rows, vocab] (same dtype), rowLoss/rowClipped [rows]
// Pass 1: per-thread online max/sum-exp (16-byte loads), merged across the block; the row
// coefficient comes from loss_math.h (the same code as the CPU path); pass 2 writes
// grad_u = exp(z_u - max) * (-w / sum), then grad_a = w * (1 - p_a).
#include <mutex>

#include "loss/cuda_common.cuh"
#include "loss/loss_cuda.h"

namespace xopd {
namespace loss {
namespace cuda {
namespace {

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads) PolicyGradientKernel(
    const T* __restrict__ logits, size_t vocab, const int32_t* __restrict__ actions, const float* __restrict__ adv,
    const uint8_t* __restrict__ mask, const float* __restrict__ old, PgParams P, double invKept, T* __restrict__ grad,
    double* __restrict__ rowLoss, int32_t* __restrict__ rowClipped, unsigned long long* __restrict__ badRow) {
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
    if (threadIdx.x == 0) atomicMin(badRow, static_cast<unsigned long long>(r));
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

struct Workspace {
  std::mutex mu;
  DeviceBuffer logits, grad, actions, adv, mask, old, rowLoss, rowClipped, bad;
};

Workspace& Ws() {
  static Workspace* w = new Workspace();  // never freed: lives as long as the process
  return *w;
}

template <typename T>
std::string Run(const PolicyGradientArgs& a, const RowOutputs& o, int64_t* badRow) {
  Workspace& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  const size_t rows = a.logits.rows, vocab = a.logits.vocab;
  const size_t n = rows * vocab, bytes = n * sizeof(T);
  std::string err;
  if (!(err = ws.logits.Reserve(bytes)).empty() || !(err = ws.grad.Reserve(bytes)).empty() ||
      !(err = ws.actions.Reserve(rows * 4)).empty() || !(err = ws.adv.Reserve(rows * 4)).empty() ||
      !(err = ws.mask.Reserve(rows)).empty() || !(err = ws.old.Reserve(rows * 4)).empty() ||
      !(err = ws.rowLoss.Reserve(rows * 8)).empty() || !(err = ws.rowClipped.Reserve(rows * 4)).empty() ||
      !(err = ws.bad.Reserve(8)).empty())
    return err;
  XOPD_CUDA_TRY(cudaMemcpy(ws.logits.ptr, a.logits.data, bytes, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemcpy(ws.actions.ptr, a.actions, rows * 4, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemcpy(ws.adv.ptr, a.advantages, rows * 4, cudaMemcpyHostToDevice));
  if (a.mask) XOPD_CUDA_TRY(cudaMemcpy(ws.mask.ptr, a.mask, rows, cudaMemcpyHostToDevice));
  if (a.oldLogprobs) XOPD_CUDA_TRY(cudaMemcpy(ws.old.ptr, a.oldLogprobs, rows * 4, cudaMemcpyHostToDevice));
  XOPD_CUDA_TRY(cudaMemset(ws.bad.ptr, 0xFF, 8));
  const uint8_t* dMask = a.mask ? ws.mask.as<uint8_t>() : nullptr;
  const float* dOld = a.oldLogprobs ? ws.old.as<float>() : nullptr;
  auto launch = [&](auto kernel) {
    kernel<<<static_cast<unsigned>(rows), kThreads>>>(ws.logits.as<T>(), vocab, ws.actions.as<int32_t>(), ws.adv.as<float>(),
                                                        dMask, dOld, a.params, o.invKept, ws.grad.as<T>(), ws.rowLoss.as<double>(),
                                                        ws.rowClipped.as<int32_t>(), ws.bad.as<unsigned long long>());
  };
  if (RowsVectorizable<T>(vocab)) launch(PolicyGradientKernel<T, true>);
  else launch(PolicyGradientKernel<T, false>);
  XOPD_CUDA_TRY(cudaGetLastError());
  unsigned long long bad = 0;
  XOPD_CUDA_TRY(cudaMemcpy(&bad, ws.bad.ptr, 8, cudaMemcpyDeviceToHost));
  if (bad != ~0ull) {
    *badRow = static_cast<int64_t>(bad);
    return "logits hold NaN or an infinite value";
  }
  XOPD_CUDA_TRY(cudaMemcpy(a.grad, ws.grad.ptr, bytes, cudaMemcpyDeviceToHost));
  XOPD_CUDA_TRY(cudaMemcpy(o.rowLoss, ws.rowLoss.ptr, rows * 8, cudaMemcpyDeviceToHost));
  XOPD_CUDA_TRY(cudaMemcpy(o.rowClipped, ws.rowClipped.ptr, rows * 4, cudaMemcpyDeviceToHost));
  return "";
}

}  // namespace

std::string PolicyGradient(const PolicyGradientArgs& a, const RowOutputs& out, int64_t* badRow) {
  *badRow = -1;
  if (a.logits.rows > 0x7FFFFFFFu) return "too many rows for one launch";
  return a.logits.bf16 ? Run<uint16_t>(a, out, badRow) : Run<float>(a, out, badRow);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
