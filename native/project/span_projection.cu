// Sparse span projection (DESIGN 5), CUDA path: one thread per student row, running ProjectRow
// from span_row.h (the CPU path's code). The projector's tables (student trie, teacher token
// bytes and special flags, the special-token map) are copied to the device on first use and kept.
// The host plans the rows (k, m, |u|, output slots); the CSR is built on the host from the slots
// (ProjectRows), or left on the device for the divergence (ProjectRowsToDevice).
#include <mutex>
#include <string>
#include <vector>

#include "common/cuda_info.h"
#include "common/cuda_macros.h"
#include "project/span_cuda.h"

namespace xopd {
namespace project {
namespace cuda {

// Per-call device buffers of one projector, grown as needed.
struct CallBuffers {
  enum Slot { kTasks, kTeacherIds, kLogprobs, kTopkIds, kTopkLogprobs, kIds, kProbs, kCount, kProbsF, kTail, kMask, kRowBegin, kRowEnd, kSlots };
  void* p[kSlots] = {};
  size_t bytes[kSlots] = {};
  std::string Reserve(int slot, size_t n) {
    if (p[slot] && n <= bytes[slot]) return "";
    if (p[slot]) cudaFree(p[slot]);
    p[slot] = nullptr;
    bytes[slot] = 0;
    XOPD_CUDA_TRY(cudaMalloc(&p[slot], n == 0 ? 1 : n));
    bytes[slot] = n;
    return "";
  }
  size_t Free() {
    size_t n = 0;
    for (int s = 0; s < kSlots; ++s) {
      if (p[s]) cudaFree(p[s]);
      n += bytes[s];
      p[s] = nullptr;
      bytes[s] = 0;
    }
    return n;
  }
  template <typename T>
  T* as(int slot) const { return static_cast<T*>(p[slot]); }
};

struct DeviceTables {
  int32_t *first = nullptr, *child = nullptr, *token = nullptr, *root = nullptr, *specialMap = nullptr;
  uint8_t *label = nullptr, *tbytes = nullptr, *tspecial = nullptr;
  uint32_t* toffsets = nullptr;
  CallBuffers calls;
};

namespace {

// One lock for every CUDA projection call (and ReleaseCudaWorkspaces), and the projectors that
// hold device memory, so the release can reach their call buffers.
struct Projectors {
  std::mutex mu;
  std::vector<DeviceTables*> live;
  Projectors() {
    RegisterCudaWorkspace([this]() {
      std::lock_guard<std::mutex> lock(mu);
      size_t n = 0;
      for (DeviceTables* d : live) n += d->calls.Free();
      return n;
    });
  }
};
Projectors& All() {
  static Projectors* p = new Projectors();  // lives as long as the process
  return *p;
}

__global__ void ProjectRowsKernel(const RowTask* __restrict__ tasks, size_t rows, TeacherView tv, TokenBytesView tb, TrieView trie,
                                  const int32_t* __restrict__ specialMap, int32_t* __restrict__ outIds, double* __restrict__ outProbs,
                                  int32_t* __restrict__ outCount) {
  const size_t j = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (j >= rows) return;
  const RowTask t = tasks[j];
  outCount[j] = ProjectRow(t, tv, tb, trie, specialMap, outIds + t.at, outProbs + t.at);
}

// Row j's slots as WriteCsr (span_projection.cc) finishes a row: entries sorted by id, their sum
// (in that order), probabilities scaled down when rounding took the sum above 1, tail = 1 - sum.
__global__ void FinishRowsKernel(const RowTask* __restrict__ tasks, size_t rows, const int32_t* __restrict__ count,
                                 int32_t* __restrict__ ids, double* __restrict__ probs, float* __restrict__ probsOut,
                                 float* __restrict__ tail, int32_t* __restrict__ rowBegin, int32_t* __restrict__ rowEnd) {
  const size_t j = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (j >= rows) return;
  const int64_t at = tasks[j].at;
  const int32_t n = count[j];
  int32_t* id = ids + at;
  double* p = probs + at;
  for (int32_t s = 1; s < n; ++s) {  // insertion sort: a row holds a few dozen entries
    const int32_t ki = id[s];
    const double kp = p[s];
    int32_t t = s - 1;
    for (; t >= 0 && id[t] > ki; --t) {
      id[t + 1] = id[t];
      p[t + 1] = p[t];
    }
    id[t + 1] = ki;
    p[t + 1] = kp;
  }
  double sum = 0.0;
  for (int32_t s = 0; s < n; ++s) sum += p[s];
  const double scale = sum > 1.0 ? 1.0 / sum : 1.0;
  for (int32_t s = 0; s < n; ++s) probsOut[at + s] = static_cast<float>(p[s] * scale);
  tail[j] = static_cast<float>(sum >= 1.0 ? 0.0 : 1.0 - sum);
  rowBegin[j] = static_cast<int32_t>(at);
  rowEnd[j] = static_cast<int32_t>(at + n);
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

void FreeTablesLocked(DeviceTables* d) {
  for (void* p : {static_cast<void*>(d->first), static_cast<void*>(d->child), static_cast<void*>(d->token), static_cast<void*>(d->root),
                  static_cast<void*>(d->specialMap), static_cast<void*>(d->label), static_cast<void*>(d->tbytes),
                  static_cast<void*>(d->tspecial), static_cast<void*>(d->toffsets)})
    if (p) cudaFree(p);
  d->calls.Free();
  auto& live = All().live;
  for (size_t i = 0; i < live.size(); ++i)
    if (live[i] == d) {
      live.erase(live.begin() + static_cast<long>(i));
      break;
    }
  delete d;
}

// Tables on the device (made on first use), the row walks launched on stream; the slots stay on
// the device in d->calls. Caller holds All().mu.
std::string RunKernel(DeviceTables** tables, const HostTables& host, const RowsArgs& a, cudaStream_t stream, DeviceTables** out) {
  if (!*tables) {
    *tables = new DeviceTables();
    All().live.push_back(*tables);
    std::string e = UploadTables(*tables, host);
    if (!e.empty()) {
      FreeTablesLocked(*tables);
      *tables = nullptr;
      return e;
    }
  }
  DeviceTables* d = *tables;
  CallBuffers& buf = d->calls;
  const size_t m = a.teacherTokens, K = static_cast<size_t>(a.teacher.K), slots = static_cast<size_t>(a.slots);
  std::string e;
  if (!(e = buf.Reserve(CallBuffers::kTasks, a.rows * sizeof(RowTask))).empty() || !(e = buf.Reserve(CallBuffers::kTeacherIds, m * 4)).empty() ||
      !(e = buf.Reserve(CallBuffers::kLogprobs, m * 4)).empty() || !(e = buf.Reserve(CallBuffers::kTopkIds, m * K * 4)).empty() ||
      !(e = buf.Reserve(CallBuffers::kTopkLogprobs, m * K * 4)).empty() || !(e = buf.Reserve(CallBuffers::kIds, slots * 4)).empty() ||
      !(e = buf.Reserve(CallBuffers::kProbs, slots * 8)).empty() || !(e = buf.Reserve(CallBuffers::kCount, a.rows * 4)).empty())
    return e;
  XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kTasks], a.tasks, a.rows * sizeof(RowTask), cudaMemcpyHostToDevice, stream));
  if (m) {
    XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kTeacherIds], a.teacher.ids, m * 4, cudaMemcpyHostToDevice, stream));
    XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kLogprobs], a.teacher.logprobs, m * 4, cudaMemcpyHostToDevice, stream));
  }
  if (m * K != 0) {
    XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kTopkIds], a.teacher.topkIds, m * K * 4, cudaMemcpyHostToDevice, stream));
    XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kTopkLogprobs], a.teacher.topkLogprobs, m * K * 4, cudaMemcpyHostToDevice, stream));
  }
  const TeacherView tv{buf.as<const int32_t>(CallBuffers::kTeacherIds), buf.as<const float>(CallBuffers::kLogprobs),
                       buf.as<const int32_t>(CallBuffers::kTopkIds), buf.as<const float>(CallBuffers::kTopkLogprobs), a.teacher.K};
  const TokenBytesView tb{d->tbytes, d->toffsets, d->tspecial};
  const TrieView trie{d->first, d->label, d->child, d->token, d->root};
  const unsigned threads = 128, blocks = static_cast<unsigned>((a.rows + threads - 1) / threads);
  auto kernel = ProjectRowsKernel;
  XOPD_LAUNCH(kernel, dim3(blocks), dim3(threads), 0, stream)(buf.as<const RowTask>(CallBuffers::kTasks), a.rows, tv, tb, trie, d->specialMap,
                                                               buf.as<int32_t>(CallBuffers::kIds), buf.as<double>(CallBuffers::kProbs),
                                                               buf.as<int32_t>(CallBuffers::kCount));
  XOPD_CUDA_TRY(cudaGetLastError());
  *out = d;
  return "";
}

// A stream for one call, destroyed (after its work) when the call returns.
struct CallStream {
  cudaStream_t s = nullptr;
  ~CallStream() {
    if (s) {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
    cudaGetLastError();
  }
};

}  // namespace

std::string ProjectRows(DeviceTables** tables, const HostTables& host, const RowsArgs& a) {
  std::lock_guard<std::mutex> lock(All().mu);
  if (a.rows == 0) return "";
  CallStream cs;
  XOPD_CUDA_TRY(cudaStreamCreateWithFlags(&cs.s, cudaStreamNonBlocking));
  DeviceTables* d = nullptr;
  const std::string e = RunKernel(tables, host, a, cs.s, &d);
  if (!e.empty()) return e;
  const CallBuffers& buf = d->calls;
  XOPD_CUDA_TRY(cudaMemcpyAsync(a.outCount, buf.p[CallBuffers::kCount], a.rows * 4, cudaMemcpyDeviceToHost, cs.s));
  if (a.slots) {
    XOPD_CUDA_TRY(cudaMemcpyAsync(a.outIds, buf.p[CallBuffers::kIds], static_cast<size_t>(a.slots) * 4, cudaMemcpyDeviceToHost, cs.s));
    XOPD_CUDA_TRY(cudaMemcpyAsync(a.outProbs, buf.p[CallBuffers::kProbs], static_cast<size_t>(a.slots) * 8, cudaMemcpyDeviceToHost, cs.s));
  }
  XOPD_CUDA_TRY(cudaStreamSynchronize(cs.s));
  return "";
}

std::string ProjectRowsToDevice(DeviceTables** tables, const HostTables& host, const RowsArgs& a, const uint8_t* mask, DeviceCsr* out) {
  std::lock_guard<std::mutex> lock(All().mu);
  if (a.slots > 0x7FFFFFFF) return "the projection has more than 2^31 output slots: split the batch";
  out->hostBegin.resize(a.rows + 1);
  for (size_t j = 0; j < a.rows; ++j) out->hostBegin[j] = a.tasks[j].at;
  out->hostBegin[a.rows] = a.slots;
  if (a.rows == 0) return "";
  CallStream cs;
  XOPD_CUDA_TRY(cudaStreamCreateWithFlags(&cs.s, cudaStreamNonBlocking));
  DeviceTables* d = nullptr;
  std::string e = RunKernel(tables, host, a, cs.s, &d);
  if (!e.empty()) return e;
  CallBuffers& buf = d->calls;
  const size_t slots = static_cast<size_t>(a.slots);
  if (!(e = buf.Reserve(CallBuffers::kProbsF, slots * 4)).empty() || !(e = buf.Reserve(CallBuffers::kTail, a.rows * 4)).empty() ||
      !(e = buf.Reserve(CallBuffers::kMask, a.rows)).empty() || !(e = buf.Reserve(CallBuffers::kRowBegin, a.rows * 4)).empty() ||
      !(e = buf.Reserve(CallBuffers::kRowEnd, a.rows * 4)).empty())
    return e;
  XOPD_CUDA_TRY(cudaMemcpyAsync(buf.p[CallBuffers::kMask], mask, a.rows, cudaMemcpyHostToDevice, cs.s));
  const unsigned threads = 128, blocks = static_cast<unsigned>((a.rows + threads - 1) / threads);
  auto kernel = FinishRowsKernel;
  XOPD_LAUNCH(kernel, dim3(blocks), dim3(threads), 0, cs.s)(buf.as<const RowTask>(CallBuffers::kTasks), a.rows, buf.as<const int32_t>(CallBuffers::kCount),
                                                             buf.as<int32_t>(CallBuffers::kIds), buf.as<double>(CallBuffers::kProbs),
                                                             buf.as<float>(CallBuffers::kProbsF), buf.as<float>(CallBuffers::kTail),
                                                             buf.as<int32_t>(CallBuffers::kRowBegin), buf.as<int32_t>(CallBuffers::kRowEnd));
  XOPD_CUDA_TRY(cudaGetLastError());
  XOPD_CUDA_TRY(cudaStreamSynchronize(cs.s));
  out->rowBegin = buf.as<const int32_t>(CallBuffers::kRowBegin);
  out->rowEnd = buf.as<const int32_t>(CallBuffers::kRowEnd);
  out->ids = buf.as<const int32_t>(CallBuffers::kIds);
  out->probs = buf.as<const float>(CallBuffers::kProbsF);
  out->tail = buf.as<const float>(CallBuffers::kTail);
  out->mask = buf.as<const uint8_t>(CallBuffers::kMask);
  return "";
}

void FreeTables(DeviceTables* d) {
  if (!d) return;
  std::lock_guard<std::mutex> lock(All().mu);
  FreeTablesLocked(d);
}

}  // namespace cuda
}  // namespace project
}  // namespace xopd
