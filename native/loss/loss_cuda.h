// Host entry points of the CUDA loss kernels (policy_gradient.cu, sparse_divergence.cu). Host
// logits in, host gradient out, through pinned staging in chunks of rows (common/cuda_workspace.cuh);
// each returns "" on success or the error text (raised as E_CUDA), and sets *badRow to the first
// row holding NaN/Inf (else -1). Declared always, defined only with CUDA.
#pragma once
#include <cstdint>
#include <string>

#include "loss/loss.h"

namespace xopd {
namespace loss {
namespace cuda {

std::string PolicyGradient(const PolicyGradientArgs& a, const RowOutputs& out, int64_t* badRow);
std::string SparseDivergence(const SparseDivergenceArgs& a, const RowOutputs& out, int64_t* badRow);

// Targets already in device memory (the CUDA span projection's output, handed over without a
// trip through the host). Row r's entries are k in [rowBegin[r], rowEnd[r]) of ids/probs; the host
// knows an upper bound of each row's entries (hostBegin, [rows + 1], non-decreasing, rowEnd[r] <=
// hostBegin[r + 1]) to size the chunks, and the mask (hostMask, [rows] or null) for the mean.
struct DeviceTargets {
  const int32_t* rowBegin = nullptr;  // [rows] device
  const int32_t* rowEnd = nullptr;    // [rows] device
  const int32_t* ids = nullptr;       // device
  const float* probs = nullptr;       // device
  const float* tail = nullptr;        // [rows] device
  const uint8_t* mask = nullptr;      // [rows] device, or null
  const int64_t* hostBegin = nullptr; // [rows + 1] host
  const uint8_t* hostMask = nullptr;  // [rows] host, or null
};
// a's targets (rowPtr, ids, probs, tail, mask) are not read: t holds them.
std::string SparseDivergenceDeviceTargets(const SparseDivergenceArgs& a, const DeviceTargets& t, const RowOutputs& out, int64_t* badRow);

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
