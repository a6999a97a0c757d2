// The two macros the CUDA paths share with their CPU twins.
//   XOPD_HD        a function compiled for host and device under nvcc (plain inline elsewhere), so
//                  per-row math exists once for both paths (loss/loss_math.h, project/span_row.h).
//   XOPD_CUDA_TRY  in .cu host code returning std::string: on a CUDA error, clears it and returns
//                  "<call> failed: <reason>" (the binding raises it as E_CUDA).
#pragma once

#if defined(__CUDACC__)
#define XOPD_HD __host__ __device__ inline
#else
#define XOPD_HD inline
#endif

#if defined(__CUDACC__)
#include <cuda_runtime.h>

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
