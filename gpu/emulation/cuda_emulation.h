// Runs the real CUDA sources (native/**/*.cu: kernels and their host code) as host C++, so the
// kernels are tested in CI, where there is no GPU. Included by common/cuda_macros.h when
// XOPD_CUDA_EMULATION is defined (gpu/build.sh compiles the .cu files with g++ -x c++).
//
// What is emulated, and how:
//   threads      every CUDA thread of a block is a fiber (its own stack) with its own threadIdx;
//                the blocks of a grid run one after another, in blockIdx order.
//   barriers     __syncthreads / __syncthreads_or wait until every live thread of the block has
//                arrived; a barrier reached after some threads of the block exited, or while the
//                others wait elsewhere, is reported as a kernel fault (divergent barrier).
//   warps        __shfl_xor_sync goes through per-warp shared slots and waits for every lane of its
//                mask; a lane outside the mask that calls it, a source lane outside it, or lanes
//                passing different masks are kernel faults.
//   __shared__   one copy per kernel (static), reused block after block; dynamic shared memory is
//                one buffer sized by the launch.
//   streams      work is queued per stream and runs only when the host synchronises on it (an
//                event, the stream, the device): a host that reads a result or reuses a staging
//                buffer before it synchronised sees stale data, as it could on a device.
//   memory       "device" and pinned allocations are host heap blocks, tracked, under a device
//                memory limit the harness sets; copies are bounds-checked against the allocations.
//   faults       kernel faults are sticky (every later call fails, as after a real device fault);
//                the harness can inject allocation failures and kernel faults to test the host
//                paths' error handling.
// Under ThreadSanitizer the fibers are TSan fibers that do not synchronise when they switch: only
// the emulated barriers and shuffles order memory, so a missing __syncthreads is a reported race.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <utility>

// ---- CUDA keywords ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

// ---- built-in types ----
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

// ---- runtime types ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};
enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaHostAllocDefault 0x00
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02
struct CUstream_st;
struct CUevent_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlockOptin;
  int multiProcessorCount;
  int major, minor;
};

namespace xopd_emu {

// ---- inside a kernel ----
const uint3& ThreadIdx();
const uint3& BlockIdx();
const dim3& BlockDim();
const dim3& GridDim();
void SyncThreads();
int SyncThreadsOr(int predicate);
void Shuffle(unsigned mask, const void* in, void* out, size_t bytes, int srcLane);
int LaneId();
void* DynamicShared();

// ---- launches ----
void LaunchKernel(const void* fn, dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream, std::function<void()> body,
                  const char* name);

template <typename... P>
struct Launcher {
  void (*fn)(P...);
  dim3 grid, block;
  size_t shared;
  cudaStream_t stream;
  const char* name;
  template <typename... A>
  void operator()(A&&... a) const {
    auto f = fn;
    std::tuple<P...> args(std::forward<A>(a)...);  // converted to the kernel's parameters now, as CUDA does
    LaunchKernel(reinterpret_cast<const void*>(f), grid, block, shared, stream, [f, args]() { std::apply(f, args); }, name);
  }
};
template <typename... P>
Launcher<P...> MakeLauncher(void (*fn)(P...), dim3 grid, dim3 block, size_t shared, cudaStream_t stream, const char* name) {
  return Launcher<P...>{fn, grid, block, shared, stream, name};
}

// ---- the harness's controls ----
struct Stats {
  size_t launches = 0, blocks = 0;
  size_t h2dBytes = 0, d2hBytes = 0, d2dBytes = 0;
  size_t pageableAsyncCopies = 0;  // async copies from or to memory that is not pinned
  size_t deviceBytes = 0, peakDeviceBytes = 0, pinnedBytes = 0, peakPinnedBytes = 0;
  size_t streamsCreated = 0, streamsLive = 0;
};
Stats GetStats();
void ResetStats();
// Device memory the emulated device has (cudaMalloc fails past it; cudaMemGetInfo reports it).
void SetDeviceMemory(size_t bytes);
// Only blocks for which keep(blockIdx.x) is true run (a launch of 70,000 rows that checks a few).
void SetBlockFilter(std::function<bool(unsigned)> keep);
// cudaMalloc / cudaHostAlloc fail `count` times, from the n-th call from now (n = 1: the next);
// n = 0 turns it off.
void FailAllocation(int n, int count = 1);
// The n-th kernel launch from now faults when it runs (sticky cudaErrorIllegalAddress).
void FaultKernel(int n);
// The fault or misuse the emulation saw last ("" when none): kernel faults and bad API calls.
std::string LastFault();
// Like cudaDeviceReset: frees everything, clears a sticky fault.
void ResetDevice();

}  // namespace xopd_emu

#define threadIdx (::xopd_emu::ThreadIdx())
#define blockIdx (::xopd_emu::BlockIdx())
#define blockDim (::xopd_emu::BlockDim())
#define gridDim (::xopd_emu::GridDim())

// ---- device intrinsics ----
inline void __syncthreads() { xopd_emu::SyncThreads(); }
inline int __syncthreads_or(int predicate) { return xopd_emu::SyncThreadsOr(predicate); }
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
  static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
  const int lane = xopd_emu::LaneId();
  int src = lane ^ laneMask;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;  // outside the lane's segment: own value
  T out;
  xopd_emu::Shuffle(mask, &v, &out, sizeof(T), src);
  return out;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline unsigned atomicOr(unsigned* a, unsigned v) { return __atomic_fetch_or(a, v, __ATOMIC_RELAXED); }
inline int atomicAdd(int* a, int v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return __atomic_fetch_add(a, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicMin(unsigned long long* a, unsigned long long v) {
  unsigned long long old = __atomic_load_n(a, __ATOMIC_RELAXED);
  while (v < old && !__atomic_compare_exchange_n(a, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

// ---- runtime API (the calls the xopd sources make) ----
cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDevice(int* dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev);
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int dev);
cudaError_t cudaFuncSetAttribute(const void* fn, cudaFuncAttribute attr, int value);
template <typename F>
cudaError_t cudaFuncSetAttribute(F* fn, cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(fn), attr, value);
}
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** p, size_t bytes);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
const char* cudaGetErrorName(cudaError_t e);
