// The emulation behind cuda_emulation.h: a fiber per CUDA thread, barriers and shuffles that wait
// for the threads they name, deferred streams, tracked memory. Built WITHOUT ThreadSanitizer even
// in the TSan harness (its own bookkeeping is shared by every fiber on purpose); it tells TSan
// which fiber runs (no synchronisation on a switch) and where its barriers order memory.
#include "cuda_emulation.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#if defined(XOPD_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#define EMU_TSAN_ACQUIRE(p) __tsan_acquire(p)
#define EMU_TSAN_RELEASE(p) __tsan_release(p)
#else
#define EMU_TSAN_ACQUIRE(p) ((void)(p))
#define EMU_TSAN_RELEASE(p) ((void)(p))
#endif

namespace xopd_emu {
namespace {

constexpr size_t kDefaultSharedLimit = 48 * 1024;
constexpr int kSharedOptin = 232448;  // an H100's opt-in limit per block
#if defined(XOPD_EMU_TSAN)
constexpr size_t kStackBytes = 512 * 1024;
#else
constexpr size_t kStackBytes = 128 * 1024;
#endif

// ---------------------------------------------------------------- fibers and blocks

// Switching between fibers: on x86-64 a few instructions that save the callee-saved registers and
// the stack pointer (glibc's swapcontext also saves the signal mask, a system call per switch, and a
// block switches hundreds of thousands of times); elsewhere ucontext.
#if defined(__x86_64__)
extern "C" void xopd_emu_switch(void** saveSp, void* loadSp);
asm(R"(
  .text
  .globl xopd_emu_switch
  .type xopd_emu_switch, @function
xopd_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size xopd_emu_switch, .-xopd_emu_switch
)");
struct Context {
  void* sp = nullptr;
};
void SwitchContext(Context& from, Context& to) { xopd_emu_switch(&from.sp, to.sp); }
// A context that starts entry() on the stack [stack, stack + bytes) (entry never returns).
void MakeContext(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t{15}));
  *--top = 0;                                          // entry's (never used) return address
  *--top = reinterpret_cast<uint64_t>(entry);          // where the first switch returns to
  for (int i = 0; i < 6; ++i) *--top = 0;              // rbp rbx r12 r13 r14 r15
  *--top = 0x1F80ull | (uint64_t{0x037F} << 32);       // default MXCSR and x87 control word
  c.sp = top;
}
#else
struct Context {
  ucontext_t uc;
};
void SwitchContext(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void MakeContext(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
  Context ctx;
  char* stack = nullptr;  // kStackBytes plus a guard page below
  void* tsan = nullptr;
  uint3 tid{0, 0, 0};
  int linear = 0;
  enum State { kRunnable, kBlockWait, kWarpWait, kDone } state = kDone;
};

struct Warp {
  unsigned arrived = 0, mask = 0;
  uint64_t gen = 0;
  uint64_t slots[2][32];
  char sync[2];  // TSan sync addresses, one per generation parity
};

struct Block {
  dim3 grid, block;
  uint3 bid{0, 0, 0};
  int threads = 0, live = 0, exited = 0;
  int arrived = 0;
  uint64_t gen = 0;
  int orAcc[2] = {0, 0};
  char sync[2];
  std::vector<Warp> warps;
  std::vector<unsigned char> dynamicShared;
  Fiber* current = nullptr;
  Context sched;
  void* schedTsan = nullptr;
  bool failed = false;
  std::string fault;
  const std::function<void()>* body = nullptr;
  const char* kernel = "";
  char startSync, doneSync;
};

std::vector<Fiber> gFibers;  // reused from launch to launch (stacks and TSan fibers)
Block* gBlock = nullptr;     // the block running now

void SwitchTo(Fiber& f) {
  Block& b = *gBlock;
  b.current = &f;
#if defined(XOPD_EMU_TSAN)
  __tsan_switch_to_fiber(f.tsan, __tsan_switch_to_fiber_no_sync);
#endif
  SwitchContext(b.sched, f.ctx);
}

// From a fiber back to the scheduler (returns when the scheduler resumes this fiber).
void Yield() {
  Block& b = *gBlock;
  Fiber& f = *b.current;
#if defined(XOPD_EMU_TSAN)
  __tsan_switch_to_fiber(b.schedTsan, __tsan_switch_to_fiber_no_sync);
#endif
  SwitchContext(f.ctx, b.sched);
}

[[noreturn]] void Fail(const std::string& what) {
  Block& b = *gBlock;
  char where[160];
  std::snprintf(where, sizeof(where), "%s, block (%u,%u,%u), thread (%u,%u,%u): ", b.kernel, b.bid.x, b.bid.y, b.bid.z,
                b.current->tid.x, b.current->tid.y, b.current->tid.z);
  b.failed = true;
  b.fault = where + what;
  for (;;) Yield();  // never resumed
}

void FiberMain() {
  Block& b = *gBlock;
  EMU_TSAN_ACQUIRE(&b.startSync);
  (*b.body)();
  Block& b2 = *gBlock;
  EMU_TSAN_RELEASE(&b2.doneSync);
  b2.current->state = Fiber::kDone;
  --b2.live;
  ++b2.exited;
  for (;;) Yield();
}

void EnsureFibers(int n) {
  const long page = 4096;
  while (static_cast<int>(gFibers.size()) < n) gFibers.emplace_back();
  for (int i = 0; i < n; ++i) {
    Fiber& f = gFibers[i];
    if (f.stack) continue;
    void* mem = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
      std::fprintf(stderr, "cuda emulation: cannot map a fiber stack\n");
      std::abort();
    }
    mprotect(mem, page, PROT_NONE);  // a stack overflow faults instead of corrupting the next stack
    f.stack = static_cast<char*>(mem) + page;
#if defined(XOPD_EMU_TSAN)
    f.tsan = __tsan_create_fiber(0);
#endif
  }
}

std::string DescribeDeadlock(const Block& b) {
  int atBlock = 0, atWarp = 0;
  for (int i = 0; i < b.threads; ++i) {
    if (gFibers[i].state == Fiber::kBlockWait) ++atBlock;
    if (gFibers[i].state == Fiber::kWarpWait) ++atWarp;
  }
  char msg[256];
  std::snprintf(msg, sizeof(msg),
                "%s, block (%u,%u,%u): deadlock: %d threads wait at __syncthreads, %d at a warp shuffle, %d exited (a barrier "
                "not reached by every thread)",
                b.kernel, b.bid.x, b.bid.y, b.bid.z, atBlock, atWarp, b.exited);
  return msg;
}

// Runs one block to the end; "" or the fault.
std::string RunBlock(Block& b) {
  const int n = b.threads;
  EnsureFibers(n);
  b.live = n;
  b.exited = 0;
  b.arrived = 0;
  b.gen = 0;
  b.warps.assign((n + 31) / 32, Warp{});
  std::fill(b.dynamicShared.begin(), b.dynamicShared.end(), 0xA5);  // shared memory starts as garbage
  for (int i = 0; i < n; ++i) {
    Fiber& f = gFibers[i];
    f.linear = i;
    f.tid = uint3{static_cast<unsigned>(i % b.block.x), static_cast<unsigned>((i / b.block.x) % b.block.y),
                  static_cast<unsigned>(i / (b.block.x * b.block.y))};
    f.state = Fiber::kRunnable;
    MakeContext(f.ctx, f.stack, kStackBytes, FiberMain);
  }
  EMU_TSAN_RELEASE(&b.startSync);
  for (;;) {
    bool ran = false;
    for (int i = 0; i < n && !b.failed; ++i) {
      if (gFibers[i].state != Fiber::kRunnable) continue;
      ran = true;
      SwitchTo(gFibers[i]);
    }
    if (b.failed) return b.fault;
    if (b.live == 0) break;
    if (!ran) return DescribeDeadlock(b);
  }
  EMU_TSAN_ACQUIRE(&b.doneSync);
  return "";
}

void WakeAll(Fiber::State from, int firstLane, int lanes) {
  for (int i = firstLane; i < firstLane + lanes && i < gBlock->threads; ++i)
    if (gFibers[i].state == from) gFibers[i].state = Fiber::kRunnable;
}

// ---------------------------------------------------------------- memory, streams, errors

struct Alloc {
  size_t bytes;
  bool pinned;
};

struct Op {
  std::function<cudaError_t()> run;
};

}  // namespace
}  // namespace xopd_emu

struct CUstream_st {
  std::deque<xopd_emu::Op> queue;
  uint64_t enqueued = 0, done = 0;
  bool blocking = true;
};
struct CUevent_st {
  CUstream_st* stream = nullptr;
  uint64_t seq = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point at;
};

namespace xopd_emu {
namespace {

struct State {
  std::recursive_mutex mu;
  std::map<uintptr_t, Alloc> allocs;
  std::unordered_map<const void*, int> sharedOptin;  // kernel -> its raised dynamic shared limit
  std::vector<CUstream_st*> streams;
  CUstream_st legacy;
  size_t deviceMemory = size_t{16} << 30;
  cudaError_t sticky = cudaSuccess, last = cudaSuccess;
  std::string fault;
  Stats stats;
  std::function<bool(unsigned)> keep;
  int failAlloc = 0, failAllocCount = 0, faultKernel = 0;
};
State& S() {
  static State* s = new State();
  return *s;
}

cudaError_t SetLast(cudaError_t e, const std::string& why = "") {
  State& s = S();
  if (e != cudaSuccess) {
    s.last = e;
    if (!why.empty()) s.fault = why;
  }
  return e;
}

// The allocation holding [p, p + n), or null.
const Alloc* Find(const void* p, size_t n, uintptr_t* base = nullptr) {
  State& s = S();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = s.allocs.upper_bound(a);
  if (it == s.allocs.begin()) return nullptr;
  --it;
  if (a + n > it->first + it->second.bytes || a < it->first) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}

bool IsDevice(const void* p, size_t n) {
  const Alloc* a = Find(p, n);
  return a && !a->pinned;
}
bool IsPinned(const void* p, size_t n) {
  const Alloc* a = Find(p, n);
  return a && a->pinned;
}

CUstream_st* StreamOf(cudaStream_t s) { return s ? s : &S().legacy; }

// Runs stream st's queued work up to (and including) its seq-th operation.
cudaError_t RunUpTo(CUstream_st* st, uint64_t seq) {
  State& s = S();
  while (st->done < seq && !st->queue.empty()) {
    if (s.sticky != cudaSuccess) return s.sticky;
    Op op = std::move(st->queue.front());
    st->queue.pop_front();
    ++st->done;
    const cudaError_t e = op.run();
    if (e != cudaSuccess) s.sticky = e;
  }
  return s.sticky;
}
cudaError_t RunAll(CUstream_st* st) { return RunUpTo(st, st->enqueued); }

cudaError_t Enqueue(cudaStream_t stream, std::function<cudaError_t()> run) {
  State& s = S();
  if (s.sticky != cudaSuccess) return s.sticky;
  CUstream_st* st = StreamOf(stream);
  if (st == &s.legacy) {
    // The legacy default stream waits for the blocking streams' earlier work.
    for (CUstream_st* o : s.streams)
      if (o->blocking) RunAll(o);
  }
  st->queue.push_back(Op{std::move(run)});
  ++st->enqueued;
  return cudaSuccess;
}

cudaError_t CheckCopy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, const char* call, bool async) {
  State& s = S();
  const bool dDev = IsDevice(dst, n), sDev = IsDevice(src, n);
  if (kind == cudaMemcpyDefault) kind = dDev ? (sDev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice) : (sDev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const bool wantDDev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool wantSDev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (n == 0) return cudaSuccess;
  if (wantDDev != dDev || wantSDev != sDev) {
    char msg[200];
    std::snprintf(msg, sizeof(msg), "%s of %zu bytes: the %s range is %s a device allocation", call, n, wantDDev != dDev ? "destination" : "source",
                  (wantDDev != dDev ? wantDDev : wantSDev) ? "not inside" : "inside");
    return SetLast(cudaErrorInvalidValue, msg);
  }
  if (async && ((!wantDDev && !IsPinned(dst, n)) || (!wantSDev && !IsPinned(src, n)))) ++s.stats.pageableAsyncCopies;
  if (kind == cudaMemcpyHostToDevice) s.stats.h2dBytes += n;
  if (kind == cudaMemcpyDeviceToHost) s.stats.d2hBytes += n;
  if (kind == cudaMemcpyDeviceToDevice) s.stats.d2dBytes += n;
  return cudaSuccess;
}

cudaError_t AllocateTracked(void** p, size_t bytes, bool pinned) {
  State& s = S();
  *p = nullptr;
  if (s.sticky != cudaSuccess) return s.sticky;
  if (s.failAlloc > 0 && --s.failAlloc == 0) {
    if (--s.failAllocCount > 0) s.failAlloc = 1;  // the next one fails too
    return SetLast(cudaErrorMemoryAllocation, "injected allocation failure");
  }
  if (!pinned && s.stats.deviceBytes + bytes > s.deviceMemory) return SetLast(cudaErrorMemoryAllocation);
  void* m = std::aligned_alloc(256, ((bytes == 0 ? 1 : bytes) + 255) / 256 * 256);
  if (!m) return SetLast(cudaErrorMemoryAllocation);
  s.allocs[reinterpret_cast<uintptr_t>(m)] = Alloc{bytes, pinned};
  if (pinned) {
    s.stats.pinnedBytes += bytes;
    s.stats.peakPinnedBytes = std::max(s.stats.peakPinnedBytes, s.stats.pinnedBytes);
  } else {
    s.stats.deviceBytes += bytes;
    s.stats.peakDeviceBytes = std::max(s.stats.peakDeviceBytes, s.stats.deviceBytes);
  }
  *p = m;
  return cudaSuccess;
}

cudaError_t FreeTracked(void* p, bool pinned) {
  State& s = S();
  if (!p) return cudaSuccess;
  auto it = s.allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == s.allocs.end() || it->second.pinned != pinned)
    return SetLast(cudaErrorInvalidValue, std::string(pinned ? "cudaFreeHost" : "cudaFree") + " of a pointer it did not allocate");
  (pinned ? s.stats.pinnedBytes : s.stats.deviceBytes) -= it->second.bytes;
  std::free(p);
  s.allocs.erase(it);
  return s.sticky;
}

}  // namespace

// ---------------------------------------------------------------- inside a kernel

const uint3& ThreadIdx() { return gBlock->current->tid; }
const uint3& BlockIdx() { return gBlock->bid; }
const dim3& BlockDim() { return gBlock->block; }
const dim3& GridDim() { return gBlock->grid; }
int LaneId() { return gBlock->current->linear & 31; }
void* DynamicShared() { return gBlock->dynamicShared.data(); }

static int BlockBarrier(int predicate) {
  Block& b = *gBlock;
  Fiber& f = *b.current;
  if (b.exited > 0) Fail("__syncthreads after " + std::to_string(b.exited) + " threads of the block exited (a barrier in divergent code)");
  const int parity = static_cast<int>(b.gen & 1);
  if (b.arrived == 0) b.orAcc[parity] = 0;
  b.orAcc[parity] |= predicate != 0;
  EMU_TSAN_RELEASE(&b.sync[parity]);
  if (++b.arrived == b.live) {
    b.arrived = 0;
    ++b.gen;
    WakeAll(Fiber::kBlockWait, 0, b.threads);
  } else {
    f.state = Fiber::kBlockWait;
    Yield();
  }
  EMU_TSAN_ACQUIRE(&b.sync[parity]);
  return b.orAcc[parity];
}

void SyncThreads() { BlockBarrier(0); }
int SyncThreadsOr(int predicate) { return BlockBarrier(predicate); }

void Shuffle(unsigned mask, const void* in, void* out, size_t bytes, int srcLane) {
  Block& b = *gBlock;
  Fiber& f = *b.current;
  const int lane = f.linear & 31, warpStart = f.linear & ~31;
  Warp& w = b.warps[f.linear >> 5];
  auto hex = [mask]() {
    char h[16];
    std::snprintf(h, sizeof(h), "0x%08x", mask);
    return std::string(h);
  };
  if (!((mask >> lane) & 1u)) Fail("lane " + std::to_string(lane) + " calls a shuffle whose mask " + hex() + " leaves it out");
  if (!((mask >> srcLane) & 1u)) Fail("lane " + std::to_string(lane) + " reads lane " + std::to_string(srcLane) + ", outside the mask " + hex());
  if (w.arrived == 0) {  // first lane of this round: every lane the mask names must be alive
    for (unsigned l = 0; l < 32; ++l)
      if (((mask >> l) & 1u) && (warpStart + static_cast<int>(l) >= b.threads || gFibers[warpStart + l].state == Fiber::kDone))
        Fail("the shuffle mask " + hex() + " names lane " + std::to_string(l) + ", which has exited or does not exist");
    w.mask = mask;
  } else if (w.mask != mask) {
    Fail("lanes of one warp shuffle with different masks (" + hex() + ")");
  }
  const int parity = static_cast<int>(w.gen & 1);
  std::memcpy(&w.slots[parity][lane], in, bytes);
  EMU_TSAN_RELEASE(&w.sync[parity]);
  w.arrived |= 1u << lane;
  if (w.arrived == mask) {
    w.arrived = 0;
    ++w.gen;
    WakeAll(Fiber::kWarpWait, warpStart, 32);
  } else {
    f.state = Fiber::kWarpWait;
    Yield();
  }
  EMU_TSAN_ACQUIRE(&w.sync[parity]);
  std::memcpy(out, &w.slots[parity][srcLane], bytes);
}

// ---------------------------------------------------------------- launches

void LaunchKernel(const void* fn, dim3 grid, dim3 block, size_t sharedBytes, cudaStream_t stream, std::function<void()> body,
                  const char* name) {
  State& s = S();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  if (s.sticky != cudaSuccess) {
    s.last = s.sticky;
    return;
  }
  const size_t threads = static_cast<size_t>(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7FFFFFFFu || grid.y > 65535 ||
      grid.z > 65535) {
    SetLast(cudaErrorInvalidConfiguration, std::string(name) + ": launch configuration out of range");
    return;
  }
  size_t limit = kDefaultSharedLimit;
  auto it = s.sharedOptin.find(fn);
  if (it != s.sharedOptin.end()) limit = std::max(limit, static_cast<size_t>(it->second));
  if (sharedBytes > limit) {
    SetLast(cudaErrorInvalidValue, std::string(name) + ": " + std::to_string(sharedBytes) + " bytes of dynamic shared memory over the " +
                                       std::to_string(limit) + " allowed");
    return;
  }
  ++s.stats.launches;
  const bool fault = s.faultKernel > 0 && --s.faultKernel == 0;
  Enqueue(stream, [=, body = std::move(body)]() -> cudaError_t {
    State& st = S();
    if (fault) {
      st.fault = std::string(name) + ": injected kernel fault";
      return cudaErrorIllegalAddress;
    }
    Block b;
    b.grid = grid;
    b.block = block;
    b.threads = static_cast<int>(threads);
    b.dynamicShared.assign(sharedBytes + 16, 0);
    b.body = &body;
    b.kernel = name;
#if defined(XOPD_EMU_TSAN)
    b.schedTsan = __tsan_get_current_fiber();
#endif
    Block* outer = gBlock;
    gBlock = &b;
    std::string err;
    for (unsigned z = 0; z < grid.z && err.empty(); ++z)
      for (unsigned y = 0; y < grid.y && err.empty(); ++y)
        for (unsigned x = 0; x < grid.x && err.empty(); ++x) {
          if (st.keep && !st.keep(x)) continue;
          b.bid = uint3{x, y, z};
          b.failed = false;
          ++st.stats.blocks;
          err = RunBlock(b);
        }
    gBlock = outer;
    if (!err.empty()) {
      st.fault = err;
      std::fprintf(stderr, "cuda emulation: kernel fault: %s\n", err.c_str());
      return cudaErrorLaunchFailure;
    }
    return cudaSuccess;
  });
}

// ---------------------------------------------------------------- the harness's controls

Stats GetStats() {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  Stats st = S().stats;
  st.streamsLive = S().streams.size();
  return st;
}
void ResetStats() {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  Stats& st = S().stats;
  const size_t dev = st.deviceBytes, pin = st.pinnedBytes;
  st = Stats{};
  st.deviceBytes = st.peakDeviceBytes = dev;
  st.pinnedBytes = st.peakPinnedBytes = pin;
}
void SetDeviceMemory(size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  S().deviceMemory = bytes;
}
void SetBlockFilter(std::function<bool(unsigned)> keep) {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  S().keep = std::move(keep);
}
void FailAllocation(int n, int count) {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  S().failAlloc = n;
  S().failAllocCount = count;
}
void FaultKernel(int n) {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  S().faultKernel = n;
}
std::string LastFault() {
  std::lock_guard<std::recursive_mutex> lock(S().mu);
  return S().fault;
}
void ResetDevice() {
  State& s = S();
  std::lock_guard<std::recursive_mutex> lock(s.mu);
  for (CUstream_st* st : s.streams) delete st;
  s.streams.clear();
  s.legacy.queue.clear();
  for (auto& a : s.allocs) std::free(reinterpret_cast<void*>(a.first));
  s.allocs.clear();
  s.sharedOptin.clear();
  s.stats.deviceBytes = s.stats.pinnedBytes = 0;
  s.sticky = s.last = cudaSuccess;
  s.fault.clear();
  s.failAlloc = s.failAllocCount = s.faultKernel = 0;
}

}  // namespace xopd_emu

// ---------------------------------------------------------------- runtime API

using xopd_emu::S;
#define EMU_LOCK std::lock_guard<std::recursive_mutex> emu_lock_(S().mu)
#define EMU_STICKY \
  if (S().sticky != cudaSuccess) return S().last = S().sticky

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* dev) {
  *dev = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : xopd_emu::SetLast(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int dev) {
  EMU_LOCK;
  if (dev != 0) return xopd_emu::SetLast(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "xopd CUDA emulation (host fibers)");
  p->totalGlobalMem = S().deviceMemory;
  p->sharedMemPerBlockOptin = xopd_emu::kSharedOptin;
  p->multiProcessorCount = 1;
  p->major = 9;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int dev) {
  if (dev != 0) return xopd_emu::SetLast(cudaErrorInvalidDevice);
  if (attr == cudaDevAttrMaxSharedMemoryPerBlockOptin) *v = xopd_emu::kSharedOptin;
  else if (attr == cudaDevAttrMultiProcessorCount) *v = 1;
  else return xopd_emu::SetLast(cudaErrorInvalidValue);
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void* fn, cudaFuncAttribute attr, int value) {
  EMU_LOCK;
  EMU_STICKY;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > xopd_emu::kSharedOptin)
    return xopd_emu::SetLast(cudaErrorInvalidValue, "cudaFuncSetAttribute: value out of range");
  S().sharedOptin[fn] = value;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  EMU_LOCK;
  return xopd_emu::AllocateTracked(p, bytes, false);
}
cudaError_t cudaFree(void* p) {
  EMU_LOCK;
  return xopd_emu::FreeTracked(p, false);
}
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  EMU_LOCK;
  return xopd_emu::AllocateTracked(p, bytes, true);
}
cudaError_t cudaMallocHost(void** p, size_t bytes) { return cudaHostAlloc(p, bytes, 0); }
cudaError_t cudaFreeHost(void* p) {
  EMU_LOCK;
  return xopd_emu::FreeTracked(p, true);
}
cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  EMU_LOCK;
  EMU_STICKY;
  *total = S().deviceMemory;
  *free = S().deviceMemory - std::min(S().deviceMemory, S().stats.deviceBytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  EMU_LOCK;
  EMU_STICKY;
  cudaError_t e = xopd_emu::CheckCopy(dst, src, bytes, kind, "cudaMemcpy", false);
  if (e != cudaSuccess) return e;
  // Synchronous: the legacy stream (and with it the blocking streams) first.
  for (CUstream_st* o : S().streams)
    if (o->blocking) xopd_emu::RunAll(o);
  if ((e = xopd_emu::RunAll(&S().legacy)) != cudaSuccess) return S().last = e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  EMU_LOCK;
  EMU_STICKY;
  cudaError_t e = xopd_emu::CheckCopy(dst, src, bytes, kind, "cudaMemcpyAsync", true);
  if (e != cudaSuccess) return e;
  return xopd_emu::Enqueue(stream, [=]() {
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
  });
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  EMU_LOCK;
  EMU_STICKY;
  if (bytes && !xopd_emu::IsDevice(p, bytes)) return xopd_emu::SetLast(cudaErrorInvalidValue, "cudaMemset outside a device allocation");
  for (CUstream_st* o : S().streams)
    if (o->blocking) xopd_emu::RunAll(o);
  xopd_emu::RunAll(&S().legacy);
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  EMU_LOCK;
  EMU_STICKY;
  if (bytes && !xopd_emu::IsDevice(p, bytes)) return xopd_emu::SetLast(cudaErrorInvalidValue, "cudaMemsetAsync outside a device allocation");
  return xopd_emu::Enqueue(stream, [=]() {
    std::memset(p, value, bytes);
    return cudaSuccess;
  });
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned flags) {
  EMU_LOCK;
  EMU_STICKY;
  *s = new CUstream_st();
  (*s)->blocking = !(flags & cudaStreamNonBlocking);
  S().streams.push_back(*s);
  ++S().stats.streamsCreated;
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  EMU_LOCK;
  auto& v = S().streams;
  auto it = std::find(v.begin(), v.end(), s);
  if (it == v.end()) return xopd_emu::SetLast(cudaErrorInvalidResourceHandle, "cudaStreamDestroy of an unknown stream");
  xopd_emu::RunAll(s);  // queued work still completes
  v.erase(it);
  delete s;
  return S().sticky;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  EMU_LOCK;
  const cudaError_t e = xopd_emu::RunAll(xopd_emu::StreamOf(s));
  return e == cudaSuccess ? e : (S().last = e);
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
  EMU_LOCK;
  EMU_STICKY;
  if (!e->recorded) return cudaSuccess;  // never recorded: nothing to wait for
  CUstream_st* from = e->stream;
  const uint64_t seq = e->seq;
  return xopd_emu::Enqueue(s, [from, seq]() { return xopd_emu::RunUpTo(from, seq); });
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  EMU_LOCK;
  EMU_STICKY;
  CUstream_st* st = xopd_emu::StreamOf(s);
  const cudaError_t r = xopd_emu::Enqueue(s, [e]() {
    e->at = std::chrono::steady_clock::now();
    return cudaSuccess;
  });
  e->stream = st;
  e->seq = st->enqueued;
  e->recorded = true;
  return r;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  EMU_LOCK;
  if (!e->recorded) return cudaSuccess;
  const cudaError_t r = xopd_emu::RunUpTo(e->stream, e->seq);
  return r == cudaSuccess ? r : (S().last = r);
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  EMU_LOCK;
  EMU_STICKY;
  return !e->recorded || e->stream->done >= e->seq ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  EMU_LOCK;
  EMU_STICKY;
  if (!a->recorded || !b->recorded || a->stream->done < a->seq || b->stream->done < b->seq) return cudaErrorNotReady;
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  EMU_LOCK;
  for (CUstream_st* o : S().streams) xopd_emu::RunAll(o);
  xopd_emu::RunAll(&S().legacy);
  if (S().sticky != cudaSuccess) S().last = S().sticky;
  return S().sticky;
}
cudaError_t cudaDeviceReset() {
  xopd_emu::ResetDevice();
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  EMU_LOCK;
  const cudaError_t e = S().last;
  S().last = S().sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  EMU_LOCK;
  return S().last;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}
