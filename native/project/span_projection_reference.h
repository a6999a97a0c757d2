// The plain float64 reference of the sparse span projection (dev addon only; see the .cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "project/span_projection.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace project {

struct ReferenceCsr {
  std::vector<int32_t> rowPtr, ids;  // [n + 1], [nnz] (ids sorted within a row)
  std::vector<double> probs, tail;   // [nnz], [n]
  std::vector<uint8_t> mask;         // [n]
};

// Arguments as BuildSpanTables + one call's ProjectInput (ids assumed checked).
void SpanProjectionReference(const TokenTable& student, const TokenTable& teacher, const int32_t* studentVocab,
                             size_t studentVocabSize, const int32_t* teacherEos, size_t teacherEosCount, int32_t studentEndOfTurn,
                             const ProjectInput& in, ReferenceCsr& out);

}  // namespace project
}  // namespace xopd
