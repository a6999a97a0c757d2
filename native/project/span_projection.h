// Sparse span projection (DESIGN 5), plain C++: the binding unpacks its arguments into these structs.
//
// Data flow of one call:
//   BuildSpanTables (once per projector)  student trie, output index of each student id, special map
//   CheckProjectInput                     shapes and values the rows rely on (the facade checked too)
//   PlanRows                              per chunk (PlanChunk): the mode of each student row and its
//                                         teacher positions k..m and |u|, plus output slots
//   RunRows                               every row's walk (span_row.h ProjectRow), CPU or CUDA
//                                         (revision 2, prefix groups: CPU only in this build)
//   WriteCsr                              per row: the buckets (below), tail = 1 - sum, the mask
//
// The targets' format (what WriteCsr writes and sparseDivergence reads; DESIGN 5 and 6):
//   rowPtr [rows + 1]   row j's buckets are rowPtr[j] .. rowPtr[j+1]-1
//   ids    [buckets]    a single-id bucket: the student id (output index); a prefix group: -1
//   lo, hi [buckets]    a prefix group: the range [lo, hi) of byteOrder it covers (0, 0 for single ids)
//   probs  [buckets]    q of the bucket;   tail [rows]: 1 - sum of the row's q
//   byteOrder [n]       the projector's emittable, non-special student ids with at least one byte,
//                       sorted by their bytes (ties by id): built once per projector, shared by
//                       every call's targets. A prefix group G(x) is the range of ids whose bytes
//                       begin with x, so a group of any size is two integers.
// Within a row the single ids come first (by id), then the groups (by lo, then widest first). The
// first-claim rule is part of the format: an id belongs to the single-id bucket naming it if the
// row has one, else to the innermost group range holding its rank, else to "other" (the tail's
// bucket). The projection writes only groups whose ranges are distinct, pairwise nested or
// disjoint, and that keep at least one id under this rule; sparseDivergence checks the same.
// Revision 1 (projection 'first') writes single ids only and no lo / hi.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/device.h"
#include "project/byte_trie.h"
#include "project/span_row.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace project {

namespace cuda {
struct DeviceTables;  // device copies of a projector's tables (span_cuda.h)
}

// What every call of one projector reads, built once per (student table, teacher table, studentVocab).
struct SpanTables {
  const TokenTable* student = nullptr;  // kept alive by the caller (the binding holds their JS objects)
  const TokenTable* teacher = nullptr;
  std::vector<int32_t> outIndex;        // [student vocab] -> output index, or -1 (not in studentVocab)
  int32_t outputSize = 0;               // the output index space: |studentVocab|, or the student vocab
  ByteTrie trie;                        // non-special student tokens the student can emit -> output index;
                                        // trie.order (output indices) is the targets' byteOrder
  std::vector<int32_t> rankOf;          // [outputSize] position in trie.order, or -1 (special, no bytes)
  std::vector<int32_t> specialMap;      // [teacher vocab] special teacher token -> output index, or -1
  cuda::DeviceTables* device = nullptr; // made on the first CUDA call, freed with the tables
  SpanTables() = default;
  SpanTables(const SpanTables&) = delete;
  SpanTables& operator=(const SpanTables&) = delete;
  ~SpanTables();
};

// studentVocab: the ids the student can emit, in output order (null: every id, output = id). A
// special teacher token maps to the student special token with the same bytes, else (a teacher
// end-of-turn id, listed in teacherEos) to studentEndOfTurn (-1: none); otherwise to nothing.
void BuildSpanTables(const TokenTable& student, const TokenTable& teacher, const int32_t* studentVocab,
                     size_t studentVocabSize, const int32_t* teacherEos, size_t teacherEosCount, int32_t studentEndOfTurn,
                     SpanTables& out);

// DESIGN 5: revision 1 sends every leaving path to first(x); revision 2 (the default) sends a
// path that leaves the sampled text inside the student's token to the prefix group G(x).
enum class Projection : int32_t { kFirst = 1, kPrefix = 2 };

// One response, as host pointers. The binding checked the arrays' lengths against n, m, chunks and K;
// CheckProjectInput checks their values.
struct ProjectInput {
  const int32_t* studentIds = nullptr;  // [n]
  size_t n = 0;
  const int32_t* teacherIds = nullptr;  // [m]
  size_t m = 0;
  // the alignment's chunks [chunks]: student [studentStart, studentEnd), teacher [teacherStart, teacherEnd)
  const int32_t *studentStart = nullptr, *studentEnd = nullptr, *teacherStart = nullptr, *teacherEnd = nullptr;
  const uint8_t* flags = nullptr;
  size_t chunks = 0;
  // the teacher at each position: the realised token's logprob [m], K candidates [m * K]
  const float* logprobs = nullptr;
  const int32_t* topkIds = nullptr;
  const float* topkLogprobs = nullptr;
  int32_t K = 0;
  uint8_t includeFlags = 0;  // chunk flags whose rows still count in the mask
  Projection projection = Projection::kPrefix;
};

// Throws E_ARG_SHAPE / E_ARG_VALUE / E_TOKEN_ID naming what to fix.
void CheckProjectInput(const SpanTables& tables, const ProjectInput& in);

// One task per student row (span_row.h RowTask) and whether the row counts (mask).
struct RowPlan {
  std::vector<RowTask> tasks;  // [n]
  std::vector<uint8_t> mask;   // [n]
  int64_t slots = 0;           // output slots reserved over all rows
};
void PlanRows(const SpanTables& tables, const ProjectInput& in, RowPlan& plan);

// Each row's entries (output index, probability) in its slots, merged per id, unsorted. Revision 2:
// nodes[s] = -1 for a single id, else the trie node of a prefix group (span_row.h ProjectRow).
struct RowSlots {
  std::vector<int32_t> ids;     // [slots]
  std::vector<double> probs;    // [slots]
  std::vector<int32_t> nodes;   // [slots] revision 2 only (empty for revision 1)
  std::vector<int32_t> count;   // [n] entries used by each row
};
void RunRows(SpanTables& tables, const ProjectInput& in, const RowPlan& plan, Device device, RowSlots& out);

// The CSR the caller allocates: rowPtr [n + 1], ids/probs [CsrEntries], tail/mask [n]; lo/hi
// [CsrEntries] for revision 2 (null for revision 1).
struct CsrView {
  int32_t* rowPtr;
  int32_t* ids;
  float* probs;
  float* tail;
  uint8_t* mask;
  int32_t* lo = nullptr;
  int32_t* hi = nullptr;
};
// Entries of the CSR (E_TOO_LONG above 2^31 - 1).
int64_t CsrEntries(const RowSlots& rows);
void WriteCsr(const SpanTables& tables, const RowPlan& plan, const RowSlots& rows, const CsrView& out);

}  // namespace project
}  // namespace xopd
