// The two passes every fused loss kernel makes over one logits row on the CPU (no softmax is ever
// materialised):
//   pass 1  RowMaxSumExp: online max and sum of exp over the row, in blocks that stay in L1;
//   pass 2  RowScaledExp: out[u] = exp(x[u] * scale - max) * c, written once.
// (The unfused benchmark baseline runs these two; the fused kernels run RowPipeline, below.)
// AVX2+FMA where the CPU has it (chosen at run time), a portable scalar path otherwise; both use
// the same exp polynomial. Element types: float, and bf16 stored as uint16_t.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace xopd {
namespace loss {

// Pass 1. Over the tokens u NOT in skip: max = max of x[u]*scale (-inf when every token is
// skipped) and sum = sum of exp(x[u]*scale - max) (summed directly, never as a difference), so
// sum >= 1 whenever a token is left. skip: sorted, distinct ids in [0, n).
// Returns false (and leaves outputs unspecified) when any scaled value, skipped or not, is NaN or
// infinite.
template <typename T>
bool RowMaxSumExp(const T* x, size_t n, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum);

// Pass 2. out[u] = exp(x[u]*scale - max) * c for all u. stream: bypass the caches for the stores
// (large outputs that are not read back soon).
template <typename T>
void RowScaledExp(const T* x, size_t n, float scale, float max, float c, T* out, bool stream);

// The fused kernels' two passes, pipelined over the rows one thread owns: pass 1 keeps each exp
// (relative to its block's running max) in a row buffer, and the row's pass 2 scales those by one
// factor per block, block by block during the NEXT row's pass 1, so the gradient stores overlap
// the exps and the logits are read from memory once. Two row buffers of 4 bytes x vocab (in L2).
//   per row: MaxSumExp(...); [row math]; Write(out, max, c); Fix(id, value)...; at the end: Flush().
// out[u] = exp(x[u]*scale - max) * c for every u, then out[id] = value for each Fix, once the next
// MaxSumExp, Zero or Flush returns. After an error the pending row may be unwritten.
template <typename T>
class RowPipeline {
 public:
  RowPipeline(size_t n, bool stream);
  // Pass 1 of a row, as RowMaxSumExp (false: a NaN or infinite value); finishes the pending row.
  bool MaxSumExp(const T* x, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum);
  // Schedules pass 2 of the row just summed; max is its pass-1 max or larger (no factor overflows).
  void Write(T* out, float max, double c);
  // An entry of the row just scheduled, written after its pass 2.
  void Fix(int32_t id, double value);
  // A row with no gradient: finishes the pending row, then zeroes out.
  void Zero(T* out);
  // Finishes the pending row.
  void Flush();

 private:
  struct Row {
    std::vector<float> storage, blockMax, factor;
    float* exps = nullptr;  // 32-byte aligned, in storage
    T* out = nullptr;       // set while pass 2 is pending
    size_t written = 0;     // blocks of pass 2 done
    std::vector<std::pair<int32_t, double>> fixes;
  };
  void WriteBlock(Row& r, size_t b);
  void FinishPending();
  size_t n_, blocks_;
  bool stream_;
  Row rows_[2];
  int cur_ = 0;  // rows_[cur_] takes the next pass 1; the other holds the pending pass 2
};

// Call after a batch of streamed stores, before the output is read elsewhere.
void StoreFence();

// exp(x) for x <= 0 with the same polynomial as the vector path; ~0 (1.6e-38) below -87.
float ExpNeg(float x);

// "auto" (best available), "avx2" or "scalar"; returns the path now active ("avx2" falls back
// to "scalar" on CPUs without AVX2+FMA). Only the dev addon calls it (lossSimd), to test the
// portable path on an AVX2 machine; the shipped addon always runs "auto".
std::string SetSimd(const std::string& name);
std::string ActiveSimd();

}  // namespace loss
}  // namespace xopd
