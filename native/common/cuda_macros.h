// The macros the CUDA paths share with their CPU twins, and what makes the same .cu sources build
// for a device (nvcc) or as host C++ under the emulation of gpu/emulation/ (XOPD_CUDA_EMULATION;
// the kernel tests that CI runs without a GPU).
//   XOPD_HD              a function compiled for host and device under nvcc (plain inline elsewhere),
//                        so per-row math exists once for both paths (loss/loss_math.h, project/span_row.h).
//   XOPD_CUDA_TRY        in .cu host code returning std::string: on a CUDA error, clears it and returns
//                        "<call> failed: <reason>" (the binding raises it as E_CUDA).
//   XOPD_LAUNCH          XOPD_LAUNCH(kernel, grid, block, sharedBytes, stream)(args...): a launch
//                        (kernel: a plain name; bind a template instance to one first).
//   XOPD_DYNAMIC_SHARED  XOPD_DYNAMIC_SHARED(type, name): the block's dynamic shared memory as type[].
#pragma once

#if defined(__CUDACC__)
#define XOPD_HD __host__ __device__ inline
#else
#define XOPD_HD inline
#endif

#if defined(__CUDACC__) || defined(XOPD_CUDA_EMULATION)
#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define XOPD_LAUNCH(kernel, grid, block, shared, stream) kernel<<<(grid), (block), (shared), (stream)>>>
#define XOPD_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#else
#include "cuda_emulation.h"
#define XOPD_LAUNCH(kernel, grid, block, shared, stream) ::xopd_emu::MakeLauncher(kernel, (grid), (block), (shared), (stream), #kernel)
#define XOPD_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::xopd_emu::DynamicShared())
#endif

#include <string>

#define XOPD_CUDA_TRY(expr)                                                 \
  do {                                                                      \
    cudaError_t e_ = (expr);                                                \
    if (e_ != cudaSuccess) {                                                \
      cudaGetLastError();                                                   \
      return std::string(#expr) + " failed: " + cudaGetErrorString(e_);     \
    }                                                                       \
  } while (0)
#endif
