// Bench-only kernels of the loss stage (dev addon; `npm run bench -- loss`): this machine's parallel
// memcpy bandwidth, the unfused two-kernel CPU baseline, and the device-resident CUDA timings.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xopd {
namespace loss {

// memcpy of n bytes split over the worker threads (what "memory bandwidth" means in the bench).
void CopyParallel(void* dst, const void* src, size_t n);

// Forward KL, fp32, in two kernels: softmax(z) written to softmax [rows, vocab], then read back
// for p_other and grad = p * C (support entries fixed after). Returns the mean loss.
//   targets CSR: rowPtr [rows + 1], ids/probs [nnz], tail [rows]
double SparseDivergenceUnfused(const float* logits, size_t rows, size_t vocab, const int32_t* rowPtr, const int32_t* ids,
                               const float* probs, const float* tail, float* softmax, float* grad);

namespace cuda {

// Seconds per call of iters fused forward+backward calls on device-resident data, of the unfused
// baseline, and of a device-to-device copy of the logits' bytes.
struct DeviceTiming {
  double fusedSeconds = 0;
  double unfusedSeconds = 0;  // softmax kernel (materialised) then gradient kernel
  double copySeconds = 0;     // cudaMemcpy D2D of the logits' bytes
  std::string device;
};
// Defined only in builds with CUDA (sparse_divergence_bench.cu); "" or the error text.
std::string BenchSparseDivergence(size_t rows, size_t vocab, bool bf16, int supportPerRow, int iters, DeviceTiming* out);

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
