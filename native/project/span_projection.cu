// Sparse span projection (DESIGN 5), CUDA path: one thread per student row, running ProjectRow
// from span_row.h (the CPU path's code). The projector's tables (student trie, teacher token
// bytes and special flags, the special-token map) are copied to the device on first use and kept.
// The host plans the rows (k, m, |u|, output slots) and builds the CSR from the slots afterwards.
#include <cuda_runtime.h>

#include <string>

#include "common/cuda_macros.h"
#include "project/span_cuda.h"

namespace xopd {
namespace project {
namespace cuda {

struct DeviceTables {
  int32_t *first = nullptr, *child = nullptr, *token = nullptr, *root = nullptr, *specialMap = nullptr;
  uint8_t *label = nullptr, *tbytes = nullptr, *tspecial = nullptr;
  uint32_t* toffsets = nullptr;
};

namespace {

__global__ void ProjectRowsKernel(const RowTask* __restrict__ tasks, size_t rows, TeacherView tv, TokenBytesView tb, TrieView trie,
                                  const int32_t* __restrict__ specialMap, int32_t* __restrict__ outIds, double* __restrict__ outProbs,
                                  int32_t* __restrict__ outCount) {
  const size_t j = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (j >= rows) return;
  const RowTask t = tasks[j];
  outCount[j] = ProjectRow(t, tv, tb, trie, specialMap, outIds + t.at, outProbs + t.at);
}

template <typename T>
std::string Upload(T** dst, const T* src, size_t n) {
  XOPD_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(dst), (n == 0 ? 1 : n) * sizeof(T)));
  if (n) XOPD_CUDA_TRY(cudaMemcpy(*dst, src, n * sizeof(T), cudaMemcpyHostToDevice));
  return "";
}

std::string UploadTables(DeviceTables* d, const HostTables& h) {
  std::string e;
  const ByteTrie& t = *h.trie;
  if (!(e = Upload(&d->first, t.first.data(), t.first.size())).empty() || !(e = Upload(&d->child, t.child.data(), t.child.size())).empty() ||
      !(e = Upload(&d->token, t.token.data(), t.token.size())).empty() || !(e = Upload(&d->root, t.root.data(), t.root.size())).empty() ||
      !(e = Upload(&d->label, t.label.data(), t.label.size())).empty() ||
      !(e = Upload(&d->tbytes, h.teacher.bytes, h.teacherBytes)).empty() ||
      !(e = Upload(&d->toffsets, h.teacher.offsets, h.teacherVocab + 1)).empty() ||
      !(e = Upload(&d->tspecial, h.teacher.special, h.teacherVocab)).empty() ||
      !(e = Upload(&d->specialMap, h.specialMap, h.teacherVocab)).empty())
    return e;
  return "";
}

// Per-call device buffers, grown as needed.
struct CallBuffers {
  void* p[8] = {};
  size_t bytes[8] = {};
  std::string Reserve(int slot, size_t n) {
    if (n <= bytes[slot]) return "";
    if (p[slot]) cudaFree(p[slot]);
    p[slot] = nullptr;
    bytes[slot] = 0;
    XOPD_CUDA_TRY(cudaMalloc(&p[slot], n == 0 ? 1 : n));
    bytes[slot] = n;
    return "";
  }
};

}  // namespace

std::string ProjectRows(DeviceTables** tables, const HostTables& host, const RowsArgs& a) {
  if (!*tables) {
    *tables = new DeviceTables();
    std::string e = UploadTables(*tables, host);
    if (!e.empty()) {
      FreeTables(*tables);
      *tables = nullptr;
      return e;
    }
  }
  DeviceTables* d = *tables;
  static CallBuffers buf;  // calls come from the JS thread, one at a time
  const size_t m = a.teacherTokens, K = static_cast<size_t>(a.teacher.K);
  std::string e;
  if (!(e = buf.Reserve(0, a.rows * sizeof(RowTask))).empty() || !(e = buf.Reserve(1, m * 4)).empty() ||
      !(e = buf.Reserve(2, m * 4)).empty() || !(e = buf.Reserve(3, m * K * 4)).empty() || !(e = buf.Reserve(4, m * K * 4)).empty() ||
      !(e = buf.Reserve(5, static_cast<size_t>(a.slots) * 4)).empty() || !(e = buf.Reserve(6, static_cast<size_t>(a.slots) * 8)).empty() ||
      !(e = buf.Reserve(7, a.rows * 4)).empty())
    return e;
  XOPD_CUDA_TRY(cudaMemcpy(buf.p[0], a.tasks, a.rows * sizeof(RowTask), cudaMemcpyHostToDevice));
  if (m) {
    XOPD_CUDA_TRY(cudaMemcpy(buf.p[1], a.teacher.ids, m * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(buf.p[2], a.teacher.logprobs, m * 4, cudaMemcpyHostToDevice));
  }
  if (m * K) {
    XOPD_CUDA_TRY(cudaMemcpy(buf.p[3], a.teacher.topkIds, m * K * 4, cudaMemcpyHostToDevice));
    XOPD_CUDA_TRY(cudaMemcpy(buf.p[4], a.teacher.topkLogprobs, m * K * 4, cudaMemcpyHostToDevice));
  }
  const TeacherView tv{static_cast<const int32_t*>(buf.p[1]), static_cast<const float*>(buf.p[2]),
                       static_cast<const int32_t*>(buf.p[3]), static_cast<const float*>(buf.p[4]), a.teacher.K};
  const TokenBytesView tb{d->tbytes, d->toffsets, d->tspecial};
  const TrieView trie{d->first, d->label, d->child, d->token, d->root};
  const unsigned threads = 128, blocks = static_cast<unsigned>((a.rows + threads - 1) / threads);
  ProjectRowsKernel<<<blocks, threads>>>(static_cast<const RowTask*>(buf.p[0]), a.rows, tv, tb, trie, d->specialMap,
                                         static_cast<int32_t*>(buf.p[5]), static_cast<double*>(buf.p[6]), static_cast<int32_t*>(buf.p[7]));
  XOPD_CUDA_TRY(cudaGetLastError());
  XOPD_CUDA_TRY(cudaMemcpy(a.outCount, buf.p[7], a.rows * 4, cudaMemcpyDeviceToHost));
  if (a.slots) {
    XOPD_CUDA_TRY(cudaMemcpy(a.outIds, buf.p[5], static_cast<size_t>(a.slots) * 4, cudaMemcpyDeviceToHost));
    XOPD_CUDA_TRY(cudaMemcpy(a.outProbs, buf.p[6], static_cast<size_t>(a.slots) * 8, cudaMemcpyDeviceToHost));
  }
  return "";
}

void FreeTables(DeviceTables* d) {
  if (!d) return;
  for (void* p : {static_cast<void*>(d->first), static_cast<void*>(d->child), static_cast<void*>(d->token), static_cast<void*>(d->root),
                  static_cast<void*>(d->specialMap), static_cast<void*>(d->label), static_cast<void*>(d->tbytes),
                  static_cast<void*>(d->tspecial), static_cast<void*>(d->toffsets)})
    if (p) cudaFree(p);
  delete d;
}

}  // namespace cuda
}  // namespace project
}  // namespace xopd
