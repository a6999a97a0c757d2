// The two passes every fused loss kernel makes over one logits row on the CPU (no softmax is ever
// materialised):
//   pass 1  RowMaxSumExp: online max and sum of exp over the row, in blocks that stay in L1;
//   pass 2  RowScaledExp: out[u] = exp(x[u] * scale - max) * c, written once.
// The fused kernels use the KeptExps overloads: pass 1 also keeps each exp (relative to its
// block's running max) in a per-thread row buffer, and pass 2 scales those by one factor per block
// instead of reading the logits and taking every exp again. The pass is compute-bound on the exp,
// so this makes the kernels ~1.4x faster; the buffer (4 bytes x vocab: 1 MiB at 262k) stays in L2.
// AVX2+FMA where the CPU has it (chosen at run time), a portable scalar path otherwise; both use
// the same exp polynomial. Element types: float, and bf16 stored as uint16_t.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
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

// One row's exps between the passes; reuse one per thread (it grows to the largest row seen).
class KeptExps {
 public:
  float* Reserve(size_t n);  // 32-byte aligned room for n exps

 private:
  template <typename T>
  friend bool RowMaxSumExp(const T*, size_t, float, const int32_t*, size_t, float*, double*, KeptExps*);
  template <typename T>
  friend void RowScaleKept(KeptExps*, float, double, T*, bool);
  std::vector<float> storage_, blockMax_, factor_;
  float* exps_ = nullptr;
  size_t n_ = 0;
};

// Pass 1 as above, keeping the exps in *kept (skipped tokens keep ~0).
template <typename T>
bool RowMaxSumExp(const T* x, size_t n, float scale, const int32_t* skip, size_t nSkip, float* max, double* sum, KeptExps* kept);

// Pass 2 from the exps of the last RowMaxSumExp(..., kept): out[u] = exp(x[u]*scale - max) * c for
// all u of that row; max is that call's max or larger (so no factor overflows).
template <typename T>
void RowScaleKept(KeptExps* kept, float max, double c, T* out, bool stream);

// Call after a batch of streamed stores, before the output is read elsewhere.
void StoreFence();

// exp(x) for x <= 0 with the same polynomial as the vector path; ~0 (1.6e-38) below -87.
float ExpNeg(float x);

// "auto" (best available), "avx2" or "scalar"; returns the path now active ("avx2" falls back
// to "scalar" on CPUs without AVX2+FMA). For tests and benchmarks.
std::string SetSimd(const std::string& name);
std::string ActiveSimd();

}  // namespace loss
}  // namespace xopd
