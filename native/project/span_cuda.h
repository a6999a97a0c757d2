// Host entry point of the CUDA span projection (span_projection.cu): the rows of one call, one
// thread per row, running the same ProjectRow as the CPU. Device copies of a projector's tables
// (trie, teacher bytes, special map) are made on first use and kept with the projector.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "project/byte_trie.h"
#include "project/span_row.h"

namespace xopd {
namespace project {
namespace cuda {

struct DeviceTables;  // opaque, owned by a projector

struct HostTables {
  const ByteTrie* trie;
  TokenBytesView teacher;  // host pointers
  size_t teacherVocab, teacherBytes;
  const int32_t* specialMap;  // [teacherVocab]
};

struct RowsArgs {
  const RowTask* tasks;  // [rows]
  size_t rows;
  TeacherView teacher;   // host pointers
  size_t teacherTokens;
  int64_t slots;         // total output slots
  int32_t* outIds;       // [slots]
  double* outProbs;      // [slots]
  int32_t* outCount;     // [rows]
};

std::string ProjectRows(DeviceTables** tables, const HostTables& host, const RowsArgs& a);
void FreeTables(DeviceTables* tables);

}  // namespace cuda
}  // namespace project
}  // namespace xopd
