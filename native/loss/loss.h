// The fused losses' entry points (DESIGN 4 and 6), plain C++: the binding unpacks the JS arguments
// into these structs, the entry point checks what the kernels rely on, runs the CPU or CUDA kernel
// and sums the rows in order (the same result on any thread count).
//   logits [rows, vocab] fp32 or bf16 (uint16) -> grad [rows, vocab] (same dtype) and the mean loss
//   over kept rows (mask != 0; all rows without a mask).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/device.h"
#include "loss/loss_math.h"

namespace xopd {
namespace loss {

struct LogitsArg {
  const void* data = nullptr;
  bool bf16 = false;  // bf16 logits arrive as uint16
  size_t rows = 0, vocab = 0;
};

struct PolicyGradientArgs {
  LogitsArg logits;
  const int32_t* actions = nullptr;      // [rows]
  const float* advantages = nullptr;     // [rows]
  const uint8_t* mask = nullptr;         // [rows] or null
  const float* oldLogprobs = nullptr;    // [rows] or null (then params.hasOld = 0)
  PgParams params;
  void* grad = nullptr;                  // out [rows, vocab], the logits' dtype
};

// Targets in the bucket format of project/span_projection.h: each entry is a bucket, a single id
// (ids[k] >= 0) or, when groupLo is given, a prefix group (ids[k] == -1) covering the columns
// byteOrder[groupLo[k] .. groupHi[k]) under the first-claim rule (single ids claim their ids first,
// then the innermost range holds its columns). Without groupLo every bucket is a single id.
struct SparseDivergenceArgs {
  LogitsArg logits;
  const int32_t* rowPtr = nullptr;  // [rows + 1]   CSR targets: row r is buckets rowPtr[r] .. rowPtr[r+1]
  const int32_t* ids = nullptr;     // [nnz]        single id, or -1 for a group
  const float* probs = nullptr;     // [nnz]        q of the bucket
  const float* tail = nullptr;      // [rows]       target mass outside the row's buckets
  size_t nnz = 0;                   // length of ids and probs
  const int32_t* groupLo = nullptr;   // [nnz] or null: a group's range of byteOrder (unused for single ids)
  const int32_t* groupHi = nullptr;   // [nnz] or null
  const int32_t* byteOrder = nullptr; // [byteOrderSize] a column per rank (distinct, in [0, vocab))
  size_t byteOrderSize = 0;
  const uint8_t* mask = nullptr;    // [rows] or null
  DivergenceParams params;          // kind resolved (JSD at beta 0 / 1 is a KL)
  void* grad = nullptr;             // out [rows, vocab], the logits' dtype
};

struct LossTotals {
  double loss = 0;             // mean over kept rows (0 when none)
  size_t kept = 0;             // rows in the mean
  double clippedFraction = 0;  // policy gradient: share of kept rows on the clipped branch
};

// Per-row outputs the kernels fill (CPU and CUDA alike).
struct RowOutputs {
  double invKept;       // 1 / kept rows (0 when none)
  double* rowLoss;      // [rows]
  int32_t* rowClipped;  // [rows] (policy gradient only)
};

// Throw E_TOKEN_ID / E_ARG_VALUE naming the first bad entry, E_CUDA on a device error;
// SparseDivergence with prefix groups on device kCuda: E_CUDA_UNAVAILABLE (CPU only in this build).
LossTotals PolicyGradient(const PolicyGradientArgs& a, Device device);
LossTotals SparseDivergence(const SparseDivergenceArgs& a, Device device);

// The first-use check behind device 'auto' (src/core/native.ts): both losses on a few rows of
// fp32 and bf16 logits (scalar and vector loads, every divergence, temperature, mask, PPO clip) on
// CUDA and on the CPU, which must agree to float rounding. ok false with the reason otherwise (no
// device, a CUDA error, a disagreement); never throws.
struct CudaCheck {
  bool ok = false;
  std::string detail;
};
CudaCheck CudaSelfCheck();

// Large outputs bypass the caches (streaming stores); small ones stay cached for the caller.
inline bool StreamOutput(size_t bytes) { return bytes >= (size_t{32} << 20); }

inline size_t CountKept(const uint8_t* mask, size_t rows) {
  if (!mask) return rows;
  size_t n = 0;
  for (size_t i = 0; i < rows; ++i) n += mask[i] != 0;
  return n;
}

}  // namespace loss
}  // namespace xopd
