// Where a kernel runs. 'auto' is resolved by the TypeScript facade (resolveDevice); native code
// gets 'cpu' or 'cuda' and raises E_CUDA_UNAVAILABLE when CUDA was not compiled in.
#pragma once
#include <string>

#include "common/errors.h"

namespace xopd {

enum class Device { kCpu, kCuda };

inline Device ParseDevice(const std::string& name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  throw Error("E_ARG_VALUE", "device must be 'cpu' or 'cuda'");
}

// What a build without the CUDA kernels raises when asked for device 'cuda'.
inline Error CudaNotBuilt() { return Error("E_CUDA_UNAVAILABLE", "the addon was built without CUDA"); }

}  // namespace xopd
