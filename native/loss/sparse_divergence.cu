// Fused bucketed divergence (DESIGN 6), CUDA path: one block per row.
//   logits [rows, vocab] fp32|bf16, CSR targets -> grad [rows, vocab] (same dtype), rowLoss [rows]
// The row's support ids are set in a bitmask in shared memory, so pass 1 sums exp over the
// non-support tokens DIRECTLY (p_other is never 1 - rest). The support's exps, the floored q and
// the bucket terms are computed by the block in parallel with Bucket() from loss_math.h (the same
// code as the CPU path); pass 2 writes grad_u = exp(z_u/T - max) * C, then the support entries.
// Host side: chunks of rows through pinned staging and two streams (common/cuda_workspace.cuh).
#include <mutex>
#include <string>

#include "common/cuda_workspace.cuh"
#include "loss/loss_cuda.h"
#include "loss/sparse_divergence_cuda.cuh"

namespace xopd {
namespace loss {
namespace cuda {
using xopd::cuda::Chunk;
using xopd::cuda::DeviceBuffer;
using xopd::cuda::Packing;
using xopd::cuda::PinnedBuffer;
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
    const T* __restrict__ logits, size_t vocab, const int32_t* __restrict__ rowBegin, const int32_t* __restrict__ rowEnd,
    int64_t idsBase, const int32_t* __restrict__ ids, const float* __restrict__ probs, const float* __restrict__ tail,
    const uint8_t* __restrict__ mask, DivergenceParams P, double invKept, T* __restrict__ grad, double* __restrict__ rowLoss,
    int64_t scratchBase, float* __restrict__ zSupport, double* __restrict__ eBuf, double* __restrict__ hBuf,
    unsigned long long* __restrict__ badRow, size_t firstRow) {
  XOPD_DYNAMIC_SHARED(uint32_t, bits);  // ceil(vocab / 32) words: the row's support
  __shared__ double sh[2 * kWarps];
  const size_t r = blockIdx.x;
  const T* z = logits + r * vocab;
  T* g = grad + r * vocab;
  if (mask && !mask[r]) {
    ZeroRow(g, vocab);
    if (threadIdx.x == 0) rowLoss[r] = 0.0;
    return;
  }
  const int64_t b = rowBegin[r];
  const int n = static_cast<int>(rowEnd[r] - b);
  const int32_t* rowIds = ids + (b - idsBase);
  const float* rowProbs = probs + (b - idsBase);
  float* zS = zSupport + (b - scratchBase);
  double* eS = eBuf + (b - scratchBase);
  double* hS = hBuf + (b - scratchBase);
  const size_t words = (vocab + 31) / 32;
  for (size_t i = threadIdx.x; i < words; i += kThreads) bits[i] = 0u;
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += kThreads) {
    const int32_t id = rowIds[k];
    atomicOr(&bits[id >> 5], 1u << (id & 31));
    zS[k] = LoadF(z, id);
  }
  __syncthreads();
  const float invT = static_cast<float>(P.invTemp);
  float m;
  double other;
  if (!MaxSumOther<T, VEC>(z, vocab, invT, bits, m, other, sh)) {
    if (threadIdx.x == 0) atomicMin(badRow, static_cast<unsigned long long>(firstRow + r));
    return;
  }
  double loss;
  const double w = invKept * P.invTemp;
  const float C = static_cast<float>(RowBuckets(zS, n, rowProbs, tail[r], m, other, P, w, eS, hS, sh, &loss, &m));
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
  for (int k = threadIdx.x; k < n; k += kThreads) StoreF(g, rowIds[k], static_cast<float>(hS[k]));
  if (threadIdx.x == 0) rowLoss[r] = loss;
}

// One pipeline slot: device buffers and their pinned staging.
struct DivergenceSlot {
  DeviceBuffer logits, grad, in, out, scratch;
  PinnedBuffer hLogits, hGrad, hIn, hOut;
  template <typename D, typename H>
  void ForEach(D onDevice, H onPinned) {
    onDevice(logits);
    onDevice(grad);
    onDevice(in);
    onDevice(out);
    onDevice(scratch);
    onPinned(hLogits);
    onPinned(hGrad);
    onPinned(hIn);
    onPinned(hOut);
  }
};

xopd::cuda::Workspace<DivergenceSlot>& Ws() {
  static auto* w = new xopd::cuda::Workspace<DivergenceSlot>();  // lives as long as the process
  return *w;
}

// Where each array sits in a slot's packed buffers, for chunks of at most R rows and E entries.
struct DivergenceLayout {
  size_t rowBegin, ids, probs, tail, mask, inBytes;  // in: host targets of the chunk
  size_t rowLoss, bad, outBytes;                     // out
  size_t zSupport, eBuf, hBuf, scratchBytes;         // scratch (device only)
  DivergenceLayout(size_t R, size_t E) {
    Packing in, out, sc;
    rowBegin = in.Add((R + 1) * 4);
    ids = in.Add(E * 4);
    probs = in.Add(E * 4);
    tail = in.Add(R * 4);
    mask = in.Add(R);
    inBytes = in.bytes;
    rowLoss = out.Add(R * 8);
    bad = out.Add(8);
    outBytes = out.bytes;
    zSupport = sc.Add(E * 4);
    eBuf = sc.Add(E * 8);
    hBuf = sc.Add(E * 8);
    scratchBytes = sc.bytes;
  }
};

template <typename T>
std::string Run(const SparseDivergenceArgs& a, const DeviceTargets* dt, const RowOutputs& o, int64_t* badRow) {
  auto& ws = Ws();
  std::lock_guard<std::mutex> lock(ws.mu);
  std::string err = ws.Bind();
  if (!err.empty()) return err;
  const size_t rows = a.logits.rows, vocab = a.logits.vocab, rowBytes = vocab * sizeof(T);
  const bool hostTargets = dt == nullptr;
  auto entry = [&](size_t r) -> int64_t { return hostTargets ? a.rowPtr[r] : dt->hostBegin[r]; };
  // Device bytes of one row (logits, gradient, its per-row arrays) and of one target entry.
  const size_t perRow = 2 * rowBytes + 4 + 4 + 1 + 8 + 16, perEntry = (hostTargets ? 8 : 0) + 4 + 8 + 8;

  size_t budget = 0;
  if (!(err = xopd::cuda::DeviceBudget(ws.DeviceBytes(), &budget)).empty()) return err;
  std::vector<Chunk> chunks;
  size_t R = 0, E = 0;
  for (;;) {  // a failed allocation (memory taken by others meanwhile) halves the chunks
    if (!(err = xopd::cuda::PlanChunks(rows, perRow, entry, perEntry, budget / 2, &chunks)).empty()) return err;
    xopd::cuda::ChunkMaxima(chunks, &R, &E);
    const DivergenceLayout L(R, E);
    cudaError_t e = cudaSuccess;
    for (DivergenceSlot& s : ws.slot) {
      for (auto [buf, n] : {std::pair<DeviceBuffer*, size_t>{&s.logits, R * rowBytes}, {&s.grad, R * rowBytes}, {&s.in, L.inBytes},
                            {&s.out, L.outBytes}, {&s.scratch, L.scratchBytes}})
        if (e == cudaSuccess) e = buf->Reserve(n);
      for (auto [buf, n] : {std::pair<PinnedBuffer*, size_t>{&s.hLogits, R * rowBytes}, {&s.hGrad, R * rowBytes}, {&s.hIn, L.inBytes},
                            {&s.hOut, L.outBytes}})
        if (e == cudaSuccess) e = buf->Reserve(n);
    }
    if (e == cudaSuccess) break;
    ws.Release();
    if (e != cudaErrorMemoryAllocation || R == 1)
      return xopd::cuda::AllocationError("the divergence's device workspace", 2 * (R * perRow + E * perEntry), e);
    budget /= 2;
  }
  const DivergenceLayout L(R, E);
  xopd::cuda::SlotStreams streams;
  if (!(err = streams.Create()).empty()) return err;

  auto stage = [&](size_t c, int slot) -> std::string {
    const Chunk& ch = chunks[c];
    DivergenceSlot& s = ws.slot[slot];
    cudaStream_t st = streams.s[slot];
    const size_t nr = ch.r1 - ch.r0, ne = static_cast<size_t>(ch.e1 - ch.e0);
    xopd::cuda::HostCopy(s.hLogits.ptr, static_cast<const char*>(a.logits.data) + ch.r0 * rowBytes, nr * rowBytes);
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.logits.ptr, s.hLogits.ptr, nr * rowBytes, cudaMemcpyHostToDevice, st));
    if (hostTargets) {
      std::memcpy(s.hIn.as<int32_t>(L.rowBegin), a.rowPtr + ch.r0, (nr + 1) * 4);
      std::memcpy(s.hIn.as<int32_t>(L.ids), a.ids + ch.e0, ne * 4);
      std::memcpy(s.hIn.as<float>(L.probs), a.probs + ch.e0, ne * 4);
      std::memcpy(s.hIn.as<float>(L.tail), a.tail + ch.r0, nr * 4);
      if (a.mask) std::memcpy(s.hIn.as<uint8_t>(L.mask), a.mask + ch.r0, nr);
      XOPD_CUDA_TRY(cudaMemcpyAsync(s.in.ptr, s.hIn.ptr, L.inBytes, cudaMemcpyHostToDevice, st));
    }
    XOPD_CUDA_TRY(cudaMemsetAsync(s.out.as<char>(L.bad), 0xFF, 8, st));
    FusedLaunch f;
    f.rows = nr;
    f.vocab = vocab;
    f.logits = s.logits.ptr;
    f.grad = s.grad.ptr;
    if (hostTargets) {
      f.rowBegin = s.in.as<int32_t>(L.rowBegin);
      f.rowEnd = f.rowBegin + 1;
      f.idsBase = ch.e0;
      f.ids = s.in.as<int32_t>(L.ids);
      f.probs = s.in.as<float>(L.probs);
      f.tail = s.in.as<float>(L.tail);
      f.mask = a.mask ? s.in.as<uint8_t>(L.mask) : nullptr;
    } else {
      f.rowBegin = dt->rowBegin + ch.r0;
      f.rowEnd = dt->rowEnd + ch.r0;
      f.idsBase = 0;
      f.ids = dt->ids;
      f.probs = dt->probs;
      f.tail = dt->tail + ch.r0;
      f.mask = dt->mask ? dt->mask + ch.r0 : nullptr;
    }
    f.scratchBase = ch.e0;
    f.zSupport = s.scratch.as<float>(L.zSupport);
    f.eBuf = s.scratch.as<double>(L.eBuf);
    f.hBuf = s.scratch.as<double>(L.hBuf);
    f.rowLoss = s.out.as<double>(L.rowLoss);
    f.badRow = s.out.as<unsigned long long>(L.bad);
    f.firstRow = ch.r0;
    f.P = a.params;
    f.invKept = o.invKept;
    const std::string e = LaunchFused<T>(f, st);
    if (!e.empty()) return e;
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.hGrad.ptr, s.grad.ptr, nr * rowBytes, cudaMemcpyDeviceToHost, st));
    XOPD_CUDA_TRY(cudaMemcpyAsync(s.hOut.ptr, s.out.ptr, L.outBytes, cudaMemcpyDeviceToHost, st));
    return "";
  };
  auto finish = [&](size_t c, int slot) -> std::string {
    const Chunk& ch = chunks[c];
    DivergenceSlot& s = ws.slot[slot];
    XOPD_CUDA_TRY(cudaStreamSynchronize(streams.s[slot]));
    const unsigned long long bad = *s.hOut.as<unsigned long long>(L.bad);
    if (bad != ~0ull) {
      *badRow = static_cast<int64_t>(bad);
      return "logits hold NaN or an infinite value";
    }
    const size_t nr = ch.r1 - ch.r0;
    xopd::cuda::HostCopy(static_cast<char*>(a.grad) + ch.r0 * rowBytes, s.hGrad.ptr, nr * rowBytes);
    std::memcpy(o.rowLoss + ch.r0, s.hOut.as<double>(L.rowLoss), nr * 8);
    return "";
  };
  return xopd::cuda::RunChunks(chunks.size(), stage, finish);
}

}  // namespace

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
std::string LaunchFused(const FusedLaunch& f, cudaStream_t stream) {
  auto vectorKernel = SparseDivergenceKernel<T, true>;
  auto scalarKernel = SparseDivergenceKernel<T, false>;
  const bool vec = RowsVectorizable<T>(f.vocab);
  size_t smem;
  std::string err = SharedMemoryFor(vec ? reinterpret_cast<const void*>(vectorKernel) : reinterpret_cast<const void*>(scalarKernel), f.vocab, &smem);
  if (!err.empty()) return err;
  if (f.rows == 0) return "";
  auto go = [&](auto kernel) {
    XOPD_LAUNCH(kernel, dim3(static_cast<unsigned>(f.rows)), dim3(kThreads), smem, stream)(
        static_cast<const T*>(f.logits), f.vocab, f.rowBegin, f.rowEnd, f.idsBase, f.ids, f.probs, f.tail, f.mask, f.P, f.invKept,
        static_cast<T*>(f.grad), f.rowLoss, f.scratchBase, f.zSupport, f.eBuf, f.hBuf, f.badRow, f.firstRow);
  };
  if (vec) go(vectorKernel);
  else go(scalarKernel);
  XOPD_CUDA_TRY(cudaGetLastError());
  return "";
}

template std::string LaunchFused<float>(const FusedLaunch&, cudaStream_t);
template std::string LaunchFused<uint16_t>(const FusedLaunch&, cudaStream_t);

std::string SparseDivergence(const SparseDivergenceArgs& a, const RowOutputs& out, int64_t* badRow) {
  *badRow = -1;
  if (a.logits.rows > 0x7FFFFFFFu) return "too many rows for one call";
  return a.logits.bf16 ? Run<uint16_t>(a, nullptr, out, badRow) : Run<float>(a, nullptr, out, badRow);
}

std::string SparseDivergenceDeviceTargets(const SparseDivergenceArgs& a, const DeviceTargets& t, const RowOutputs& out, int64_t* badRow) {
  *badRow = -1;
  if (a.logits.rows > 0x7FFFFFFFu) return "too many rows for one call";
  return a.logits.bf16 ? Run<uint16_t>(a, &t, out, badRow) : Run<float>(a, &t, out, badRow);
}

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
