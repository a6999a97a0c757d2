// Float64 references of the two fused losses (dev addon only): full softmax, textbook formulas, no
// fusion, no shared code with the kernels. Inputs as in loss.h but float64; mask [rows] (0: row
// skipped and not counted), old null for plain REINFORCE.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xopd {
namespace loss {

struct PolicyGradientReferenceResult {
  double loss = 0;
  std::vector<double> grad;  // [rows, vocab]
  double clippedFraction = 0;
};
void PolicyGradientReference(const double* logits, size_t rows, size_t vocab, const int32_t* actions, const double* adv,
                             const uint8_t* mask, const double* old, double low, double high, double dual,
                             PolicyGradientReferenceResult& out);

struct SparseDivergenceReferenceResult {
  double loss = 0;
  std::vector<double> grad;     // [rows, vocab]
  std::vector<double> rowLoss;  // [rows], before the 1/kept of the mean
};
// kind: "forward-kl" | "reverse-kl" | "jsd"; T the temperature; eps the floor of q (reverse KL, JSD).
// Buckets listed explicitly: row r's buckets are rowPtr[r] .. rowPtr[r+1]-1, bucket b holds the ids
// members[bucketPtr[b] .. bucketPtr[b+1]) (disjoint); bucketPtr null: bucket b is the one id ids[b].
void SparseDivergenceReference(const double* logits, size_t rows, size_t vocab, const int32_t* rowPtr, const int32_t* ids,
                               const int32_t* bucketPtr, const int32_t* members, const double* probs, const double* tail,
                               const uint8_t* mask, const std::string& kind, double beta, double T, double eps,
                               SparseDivergenceReferenceResult& out);

}  // namespace loss
}  // namespace xopd
