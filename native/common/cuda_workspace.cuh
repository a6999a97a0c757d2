// Host side of the CUDA paths (.cu files only): the device and pinned buffers an op keeps between
// calls, bounded and released on request (common/cuda_info.h: CudaWorkspaceLimit,
// ReleaseCudaWorkspaces), the split of a batch into chunks of rows that fit, and the two-slot
// pipeline that copies one chunk while the kernel runs on the previous one.
//
// Pipeline of one call (slot = chunk % 2, one non-blocking stream per slot, created per call):
//   stage(c)   host rows of chunk c -> pinned[slot] (parallel memcpy), async H2D, kernel, async D2H
//   finish(c)  wait for slot's stream, pinned[slot] -> the caller's output rows
// stage(c) runs while the device works on chunk c - 1 (the other stream), so chunk c's copies
// overlap chunk c - 1's kernel; finish(c - 2) comes first, freeing the slot.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/cuda_info.h"
#include "common/cuda_macros.h"
#include "common/threads.h"

namespace xopd {
namespace cuda {

// Device memory, grown when a call needs more.
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  cudaError_t Reserve(size_t n) {
    if (ptr && n <= bytes) return cudaSuccess;
    Free();
    const cudaError_t e = cudaMalloc(&ptr, n == 0 ? 1 : n);
    if (e != cudaSuccess) {
      cudaGetLastError();
      ptr = nullptr;
      return e;
    }
    bytes = n;
    return cudaSuccess;
  }
  void Free() {
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  template <typename T>
  T* as(size_t byteOffset = 0) const { return reinterpret_cast<T*>(static_cast<char*>(ptr) + byteOffset); }
};

// Page-locked host memory (the staging side of every async copy), grown when needed.
struct PinnedBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  cudaError_t Reserve(size_t n) {
    if (ptr && n <= bytes) return cudaSuccess;
    Free();
    const cudaError_t e = cudaHostAlloc(&ptr, n == 0 ? 1 : n, cudaHostAllocDefault);
    if (e != cudaSuccess) {
      cudaGetLastError();
      ptr = nullptr;
      return e;
    }
    bytes = n;
    return cudaSuccess;
  }
  void Free() {
    if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  template <typename T>
  T* as(size_t byteOffset = 0) const { return reinterpret_cast<T*>(static_cast<char*>(ptr) + byteOffset); }
};

// Offsets of several arrays packed into one buffer (one copy instead of one per array), each
// 16-byte aligned.
struct Packing {
  size_t bytes = 0;
  size_t Add(size_t n) {
    const size_t at = bytes;
    bytes += (n + 15) / 16 * 16;
    return at;
  }
};

// The buffers of one op: two slots, each with device and pinned buffers, used under mu on one
// device, and registered so that ReleaseCudaWorkspaces() frees them. Slot::ForEach(onDevice,
// onPinned) visits every buffer of a slot.
template <typename Slot>
struct Workspace {
  std::mutex mu;
  Slot slot[2];
  int device = -1;  // where the device buffers live (-1: none yet)
  Workspace() {
    RegisterCudaWorkspace([this]() {
      std::lock_guard<std::mutex> lock(mu);
      return Release();
    });
  }
  size_t DeviceBytes() {
    size_t n = 0;
    for (Slot& s : slot) s.ForEach([&](const DeviceBuffer& b) { n += b.bytes; }, [](const PinnedBuffer&) {});
    return n;
  }
  // Frees every buffer; returns the bytes freed (device and pinned). Caller holds mu.
  size_t Release() {
    size_t n = 0;
    for (Slot& s : slot) s.ForEach([&](DeviceBuffer& b) { n += b.bytes; b.Free(); }, [&](PinnedBuffer& b) { n += b.bytes; b.Free(); });
    return n;
  }
  // The buffers follow the current device: allocated on another one, they are freed first.
  std::string Bind() {
    int dev = 0;
    XOPD_CUDA_TRY(cudaGetDevice(&dev));
    if (device != dev) Release();
    device = dev;
    return "";
  }
};

// Bytes a call may hold on the device: the workspace limit, and 90% of the free memory plus what
// this op already holds (it is reused). Both slots together.
inline std::string DeviceBudget(size_t held, size_t* budget) {
  size_t freeBytes = 0, total = 0;
  XOPD_CUDA_TRY(cudaMemGetInfo(&freeBytes, &total));
  *budget = std::min(CudaWorkspaceLimit(), (freeBytes + held) / 10 * 9);
  return "";
}

// Rows [r0, r1) and target entries [e0, e1) of one chunk.
struct Chunk {
  size_t r0, r1;
  int64_t e0, e1;
};

// Splits rows into chunks of at most perSlot bytes: rowBytes per row, entryBytes per target entry
// (entry(r): the first entry of row r, entry(rows) the end; null when there are none). "" or why
// not even one row fits.
inline std::string PlanChunks(size_t rows, size_t rowBytes, const std::function<int64_t(size_t)>& entry, size_t entryBytes,
                              size_t perSlot, std::vector<Chunk>* out) {
  out->clear();
  auto at = [&](size_t r) -> int64_t { return entry ? entry(r) : 0; };
  size_t r0 = 0;
  while (r0 < rows) {
    size_t r1 = r0;
    while (r1 < rows && (r1 - r0 + 1) * rowBytes + static_cast<size_t>(at(r1 + 1) - at(r0)) * entryBytes <= perSlot) ++r1;
    if (r1 == r0)
      return "one row needs " + std::to_string(rowBytes + static_cast<size_t>(at(r0 + 1) - at(r0)) * entryBytes) +
             " bytes of device memory, over the " + std::to_string(perSlot) +
             " a chunk may use (the workspace limit, or the device's free memory): raise XOPD_CUDA_WORKSPACE_MB or use device 'cpu'";
    out->push_back(Chunk{r0, r1, at(r0), at(r1)});
    r0 = r1;
  }
  return "";
}

// Largest rows and entries over the chunks (what each slot's buffers are sized for).
inline void ChunkMaxima(const std::vector<Chunk>& chunks, size_t* rows, size_t* entries) {
  *rows = 0;
  *entries = 0;
  for (const Chunk& c : chunks) {
    *rows = std::max(*rows, c.r1 - c.r0);
    *entries = std::max(*entries, static_cast<size_t>(c.e1 - c.e0));
  }
}

// One non-blocking stream per slot, for one call. Destroying it waits for the work queued on it
// (an early error return must not leave copies running into buffers the next call reuses).
struct SlotStreams {
  cudaStream_t s[2] = {nullptr, nullptr};
  std::string Create() {
    for (cudaStream_t& x : s) XOPD_CUDA_TRY(cudaStreamCreateWithFlags(&x, cudaStreamNonBlocking));
    return "";
  }
  ~SlotStreams() {
    for (cudaStream_t x : s)
      if (x) {
        cudaStreamSynchronize(x);
        cudaStreamDestroy(x);
      }
    cudaGetLastError();
  }
};

// Runs n chunks through the two slots: stage(c, slot) enqueues chunk c, finish(c, slot) waits for
// it and takes its outputs. Both return "" or the error.
template <typename Stage, typename Finish>
std::string RunChunks(size_t n, Stage stage, Finish finish) {
  std::string err;
  for (size_t c = 0; c < n; ++c) {
    if (c >= 2 && !(err = finish(c - 2, static_cast<int>(c & 1))).empty()) return err;
    if (!(err = stage(c, static_cast<int>(c & 1))).empty()) return err;
  }
  for (size_t c = n >= 2 ? n - 2 : 0; c < n; ++c)
    if (!(err = finish(c, static_cast<int>(c & 1))).empty()) return err;
  return "";
}

// memcpy split over the CPU workers (pageable <-> pinned staging runs at memory bandwidth).
inline void HostCopy(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  constexpr size_t kPiece = size_t{1} << 20;
  const size_t pieces = (n + kPiece - 1) / kPiece;
  ParallelFor(pieces, [&](size_t b, size_t e, int) {
    const size_t lo = b * kPiece, hi = std::min(n, e * kPiece);
    std::memcpy(static_cast<char*>(dst) + lo, static_cast<const char*>(src) + lo, hi - lo);
  }, 4);
}

inline std::string AllocationError(const char* what, size_t bytes, cudaError_t e) {
  return std::string(what) + " of " + std::to_string(bytes) + " bytes failed (" + cudaGetErrorString(e) + ")";
}

}  // namespace cuda
}  // namespace xopd
