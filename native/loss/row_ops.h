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
// Many entries (prefix-group members) go through the block-sorted lists of BlockEntries instead of
// Fix: pass 1 gathers their values while each block is in L1, and pass 2 writes them with their
// block, so a scattered few thousand entries cost no cache misses.
template <typename T>
class RowPipeline {
 public:
  // Columns of a row sorted by block (block = column / kRowBlock): block b's are cols[start[b] ..
  // start[b+1]); values is one float per column.
  struct BlockEntries {
    const int32_t* cols;
    const uint32_t* start;  // [Blocks() + 1]
    float* values;
  };
  RowPipeline(size_t n, bool stream);
  size_t Blocks() const { return blocks_; }
  // Pass 1 of a row, as RowMaxSumExp (false: a NaN or infinite value); finishes the pending row.
  // gather (optional): values[k] = x[cols[k]] * scale for each listed column. skipBits (optional,
  // [n / 64 + 1] words): the skipped tokens as a bitmap instead of the list (bit u set: skip u),
  // whose cost does not grow with the number skipped.
  bool MaxSumExp(const T* x, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum,
                 const BlockEntries* gather = nullptr, const uint64_t* skipBits = nullptr);
  // Schedules pass 2 of the row just summed; max is its pass-1 max or larger (no factor overflows).
  void Write(T* out, float max, double c);
  // An entry of the row just scheduled, written after its pass 2.
  void Fix(int32_t id, double value);
  // Entries of the row just scheduled, out[cols[k]] = values[k], written with their blocks. The
  // columns must be ones pass 1 skipped. Takes the three vectors (swapped with the pipeline's own,
  // which the caller gets back to reuse).
  void FixBlocks(std::vector<int32_t>& cols, std::vector<uint32_t>& start, std::vector<float>& values);
  // A row with no gradient: finishes the pending row, then zeroes out.
  void Zero(T* out);
  // Finishes the pending row.
  void Flush();
  // Forgets a pending row without writing it (after an error, before the pipeline is used again).
  void Reset();

 private:
  struct Row {
    std::vector<float> storage, blockMax, factor;
    float* exps = nullptr;  // 32-byte aligned, in storage
    T* out = nullptr;       // set while pass 2 is pending
    size_t written = 0;     // blocks of pass 2 done
    std::vector<std::pair<int32_t, double>> fixes;
    std::vector<int32_t> blockCols;      // FixBlocks entries, by block
    std::vector<uint32_t> blockStart;    // [blocks + 1], empty when none
    std::vector<float> blockValues;
  };
  void WriteBlock(Row& r, size_t b);
  void FinishPending();
  size_t n_, blocks_;
  bool stream_;
  const T* gatherRow_ = nullptr;  // pass 1's row and its gather list, for the block hook
  const BlockEntries* gather_ = nullptr;
  float gatherScale_ = 1.0f;
  Row rows_[2];
  int cur_ = 0;  // rows_[cur_] takes the next pass 1; the other holds the pending pass 2
};

// Columns per block of the row passes (the unit of RowPipeline::BlockEntries).
constexpr size_t kRowBlock = 2048;

// Call after a batch of streamed stores, before the output is read elsewhere.
void StoreFence();

// exp(x) for x <= 0 with the same polynomial as the vector path; ~0 (1.6e-38) below -87.
float ExpNeg(float x);
// x[i] = ExpNeg(x[i] - shift[i]) for i < n (vectorised where the CPU allows).
void ExpNegShifted(float* x, const float* shift, size_t n);

// "auto" (best available), "avx2" or "scalar"; returns the path now active ("avx2" falls back
// to "scalar" on CPUs without AVX2+FMA). Only the dev addon calls it (lossSimd), to test the
// portable path on an AVX2 machine; the shipped addon always runs "auto".
std::string SetSimd(const std::string& name);
std::string ActiveSimd();

}  // namespace loss
}  // namespace xopd
