// A plain float64 forward of the whole decoder (textbook loops, one sequence at a time): the
// reference the optimised float32 path is tested against, and the function the gradient check
// differentiates by finite differences.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace xopd {
namespace model {

void ReferenceForward(const Config& c, const double* params, const int32_t* tokens, const int32_t* offsets, int B,
                      const int32_t* outStart, std::vector<double>& logits);

}  // namespace model
}  // namespace xopd
