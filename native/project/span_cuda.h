// Host entry points of the CUDA span projection (span_projection.cu): the rows of one call, one
// thread per row, running the same ProjectRow as the CPU. Device copies of a projector's tables
// (trie, teacher bytes, special map) are made on first use and kept with the projector, with the
// buffers of its calls (freed by ReleaseCudaWorkspaces, common/cuda_info.h). Calls are serialised
// by one lock: a projector's tables and buffers are never used by two calls at once.
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
  int32_t* outIds;       // [slots] host (ProjectRows only)
  double* outProbs;      // [slots] host (ProjectRows only)
  int32_t* outCount;     // [rows] host (ProjectRows only)
};

// Every row's entries (merged per id, unsorted) into the host slots, as the CPU's RunRows.
std::string ProjectRows(DeviceTables** tables, const HostTables& host, const RowsArgs& a);

// The projection's targets left in device memory for the divergence (loss/loss_cuda.h
// DeviceTargets): row j's entries are slots [rowBegin[j], rowEnd[j]) of ids/probs, sorted by id,
// with the probabilities, tail and mask WriteCsr (span_projection.cc) would write. Valid until
// the projector's next call or ReleaseCudaWorkspaces.
struct DeviceCsr {
  const int32_t* rowBegin = nullptr;  // [rows] device
  const int32_t* rowEnd = nullptr;    // [rows] device
  const int32_t* ids = nullptr;       // [slots] device
  const float* probs = nullptr;       // [slots] device
  const float* tail = nullptr;        // [rows] device
  const uint8_t* mask = nullptr;      // [rows] device
  std::vector<int64_t> hostBegin;     // [rows + 1] host: each row's first slot, then the slot count
};
// mask: [rows] host (the plan's mask).
std::string ProjectRowsToDevice(DeviceTables** tables, const HostTables& host, const RowsArgs& a, const uint8_t* mask, DeviceCsr* out);

void FreeTables(DeviceTables* tables);

}  // namespace cuda
}  // namespace project
}  // namespace xopd
