// Plain references of the model stage (dev addon only): what the optimised float32 path is tested
// against. Per-op references of the layers are plain JS in dev/model-ops-reference.ts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace xopd {
namespace model {

// gemm_reference.cc: C = (accumulate ? C : 0) + A B with a double accumulator, no packing, one
// thread; the same operand conventions as Gemm (model/gemm.h).
void GemmReference(int M, int N, int K, const float* a, size_t lda, bool aTrans, const float* b, size_t ldb,
                   bool bTrans, float* c, size_t ldc, bool accumulate);

// transformer_reference.cc: a float64 forward of the whole decoder (textbook loops, one sequence at
// a time), and the function the gradient check differentiates by finite differences. Arguments as
// Transformer::Forward, parameters in the flat layout of MakeLayout(c).
void ReferenceForward(const Config& c, const double* params, const int32_t* tokens, const int32_t* offsets, int B,
                      const int32_t* outStart, std::vector<double>& logits);

}  // namespace model
}  // namespace xopd
