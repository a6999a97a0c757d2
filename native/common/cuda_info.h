// Run-time CUDA discovery. Compiled with CUDA: asks cudart for devices (0 when no driver or GPU).
#pragma once
#include <string>

namespace xopd {

struct CudaInfo {
  bool compiled = false;
  int devices = 0;
  std::string error;  // why no device was found, when cudart says
};

CudaInfo QueryCuda();
// True when a CUDA device can run kernels now ('auto' device selection uses this).
bool CudaAvailable();

}  // namespace xopd
