// The plain float64 reference of the sparse span projection (dev addon only; see the .cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "project/span_projection.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace project {

// Explicit buckets: row j's buckets are rowPtr[j] .. rowPtr[j+1]-1; bucket b holds the ids
// members[bucketPtr[b] .. bucketPtr[b+1]) (sorted; one id for a single-id bucket) with probs[b].
struct ReferenceCsr {
  std::vector<int32_t> rowPtr, bucketPtr, members;  // [n + 1], [buckets + 1], [members]
  std::vector<double> probs, tail;                  // [buckets], [n]
  std::vector<uint8_t> mask;                        // [n]
};

// Arguments as BuildSpanTables + one call's ProjectInput (ids assumed checked; in.projection chooses
// revision 1 or 2).
void SpanProjectionReference(const TokenTable& student, const TokenTable& teacher, const int32_t* studentVocab,
                             size_t studentVocabSize, const int32_t* teacherEos, size_t teacherEosCount, int32_t studentEndOfTurn,
                             const ProjectInput& in, ReferenceCsr& out);

}  // namespace project
}  // namespace xopd
