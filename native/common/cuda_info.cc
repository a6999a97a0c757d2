#include "common/cuda_info.h"

#include <cstdlib>
#include <mutex>
#include <vector>

#include "common/errors.h"

#ifdef XOPD_WITH_CUDA
#if defined(XOPD_CUDA_EMULATION)
#include "cuda_emulation.h"
#else
#include <cuda_runtime_api.h>
#endif
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
      if (n == 0) info.error = "the CUDA runtime found no device";
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

void RequireCudaDevice() {
  const CudaInfo ci = QueryCuda();
  if (!ci.compiled) throw Error("E_CUDA_UNAVAILABLE", "device 'cuda' asked for, but the addon was built without CUDA (nvcc was not found, or XOPD_CUDA=0)");
  if (ci.devices == 0)
    throw Error("E_CUDA_UNAVAILABLE", "device 'cuda' asked for, but there is no usable CUDA device (" + ci.error + "): use device 'cpu' or 'auto'");
}

namespace {
struct WorkspaceRegistry {
  std::mutex mu;
  size_t limit = 0;  // 0: not read yet
  std::vector<std::function<size_t()>> release;
};
WorkspaceRegistry& Registry() {
  static WorkspaceRegistry* r = new WorkspaceRegistry();  // lives as long as the process (the workspaces too)
  return *r;
}
}  // namespace

size_t CudaWorkspaceLimit() {
  WorkspaceRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (r.limit == 0) {
    const char* env = std::getenv("XOPD_CUDA_WORKSPACE_MB");
    const long mb = env ? std::atol(env) : 0;
    r.limit = (mb > 0 ? static_cast<size_t>(mb) : size_t{1024}) << 20;
  }
  return r.limit;
}

void SetCudaWorkspaceLimit(size_t bytes) {
  WorkspaceRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.limit = bytes;  // 0: XOPD_CUDA_WORKSPACE_MB or the default again, on the next read
}

void RegisterCudaWorkspace(std::function<size_t()> release) {
  WorkspaceRegistry& r = Registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.release.push_back(std::move(release));
}

size_t ReleaseCudaWorkspaces() {
  std::vector<std::function<size_t()>> all;
  {
    WorkspaceRegistry& r = Registry();
    std::lock_guard<std::mutex> lock(r.mu);
    all = r.release;
  }
  size_t n = 0;
  for (auto& f : all) n += f();
  return n;
}

}  // namespace xopd
