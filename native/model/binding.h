// What other bindings (the dev addon's) need from the model binding: the config and the sequence
// offsets as the facade passes them.
#pragma once
#include "common/binding.h"
#include "model/config.h"

namespace xopd {
namespace model {

// {vocab, dim, layers, heads, hidden, maxSeq, swiglu, ropeTheta, normEps}; E_MODEL_CONFIG naming the field.
Config ConfigArg(const Napi::Value& v);
// offsets [B+1], non-decreasing from 0 to n; returns B.
int CheckOffsets(const View<int32_t>& offsets, size_t n, const char* name);

}  // namespace model
}  // namespace xopd
