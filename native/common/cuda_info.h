// Run-time CUDA discovery, and the device memory the CUDA paths keep between calls.
#pragma once
#include <cstddef>
#include <functional>
#include <string>

namespace xopd {

struct CudaInfo {
  bool compiled = false;
  int devices = 0;
  std::string error;  // why no device was found, when cudart says
};

CudaInfo QueryCuda();
// True when a CUDA device can run kernels now.
bool CudaAvailable();
// Throws E_CUDA_UNAVAILABLE saying why no device can be used (not compiled in, no driver, no GPU).
void RequireCudaDevice();

// Device and pinned memory an op's CUDA path may keep between calls (both slots of its pipeline):
// XOPD_CUDA_WORKSPACE_MB, else 1024 MiB, or what SetCudaWorkspaceLimit set (the pinned staging is
// about as large as the device buffers, so it bounds the page-locked host memory too). A batch that needs
// more runs in chunks of rows that fit; the buffers stay until ReleaseCudaWorkspaces().
size_t CudaWorkspaceLimit();
void SetCudaWorkspaceLimit(size_t bytes);  // 0: back to XOPD_CUDA_WORKSPACE_MB or the default
// Each op's workspace registers how to free its buffers (returns the bytes freed).
void RegisterCudaWorkspace(std::function<size_t()> release);
// Frees every registered workspace's device and pinned buffers; returns the bytes freed.
size_t ReleaseCudaWorkspaces();

}  // namespace xopd
