// Host entry points of the CUDA loss kernels (policy_gradient.cu, sparse_divergence.cu). Host
// memory in, host memory out; each returns "" on success or the error text (raised as E_CUDA), and
// sets *badRow to the first row holding NaN/Inf (else -1). Declared always, defined only with CUDA.
#pragma once
#include <cstdint>
#include <string>

#include "loss/loss.h"

namespace xopd {
namespace loss {
namespace cuda {

std::string PolicyGradient(const PolicyGradientArgs& a, const RowOutputs& out, int64_t* badRow);
std::string SparseDivergence(const SparseDivergenceArgs& a, const RowOutputs& out, int64_t* badRow);

}  // namespace cuda
}  // namespace loss
}  // namespace xopd
