// Host entry points of the CUDA loss kernels (policy_gradient.cu, sparse_divergence.cu). Plain
// pointers to host memory in, host memory out; each returns "" on success or the error text
// (the binding turns it into an XopdError). Declared always, defined only when built with CUDA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "loss/loss_math.h"

namespace xopd {
namespace loss {
namespace cuda {

struct PolicyGradientArgs {
  const void* logits;  // [rows, vocab] fp32, or bf16 as uint16
  bool bf16;
  size_t rows, vocab;
  const int32_t* actions;    // [rows]
  const float* advantages;   // [rows]
  const uint8_t* mask;       // [rows] or null
  const float* oldLogprobs;  // [rows] or null
  PgParams params;
  double invKept;            // 1 / number of unmasked rows (0 when none)
  void* grad;                // out [rows, vocab], same dtype as logits
  double* rowLoss;           // out [rows]
  int32_t* rowClipped;       // out [rows]
  int64_t* badRow;           // out: first row holding NaN/Inf, or -1
};

struct SparseDivergenceArgs {
  const void* logits;
  bool bf16;
  size_t rows, vocab;
  const int32_t* rowPtr;  // [rows + 1]
  const int32_t* ids;     // [nnz]
  const float* probs;     // [nnz]
  const float* tail;      // [rows]
  const uint8_t* mask;    // [rows] or null
  DivergenceParams params;
  double invKept;
  void* grad;
  double* rowLoss;
  int64_t* badRow;
};

std::string PolicyGradient(const PolicyGradientArgs& a);
std::string SparseDivergence(const SparseDivergenceArgs& a);

// Bench support: times `iters` fused forward+backward calls on device-resident data (no host
// transfers), and a device-to-device copy of the same bytes. Seconds per call.
struct DeviceTiming {
  double fusedSeconds = 0;
  double unfusedSeconds = 0;  // softmax kernel (materialised) then gradient kernel
  double copySeconds = 0;     // cudaMemcpy D2D of the logits' bytes
  std::string device;
};
std::string BenchSparseDivergence(size_t rows, size_t vocab, bool bf16, int supportPerRow, int iters, DeviceTiming* out);

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
