#include "common/cuda_info.h"

#include <mutex>

#ifdef XOPD_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace xopd {

CudaInfo QueryCuda() {
  static CudaInfo info;
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef XOPD_WITH_CUDA
    info.compiled = true;
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err == cudaSuccess) {
      info.devices = n;
    } else {
      info.devices = 0;
      info.error = cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky error so later queries start clean
    }
#endif
  });
  return info;
}

bool CudaAvailable() { return QueryCuda().devices > 0; }

}  // namespace xopd
