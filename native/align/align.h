// Precise token mapping (DESIGN section 3): chunks of a student and a teacher token sequence.
//
// Data flow of one pair:  ids ──► byte offsets + byte streams ──► equal? ──yes──► runs = [(0,0,N)]
//                                                               └─no──► ByteDiff ──► runs
//                         runs ──► SyncCuts (linear merge of the two offset arrays per run)
//                              ──► chunks + flags (OVERSIZE / APPROX / TAIL)
// One kernel per file: byte_diff.cc (bounded Myers), sync_cuts.cc (the merge), align.cc (the pair
// driver and flags, AlignBatch); each has a plain reference beside it (*_reference.cc, declared in
// align_reference.h, dev addon only). The JS binding is binding.cc.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "tokenizer/token_table.h"

namespace xopd {
namespace align {

constexpr uint8_t kOversize = 1;  // either side has more than maxChunkTokens tokens
constexpr uint8_t kApprox = 2;    // the bytes of the two sides differ
constexpr uint8_t kTail = 4;      // student tokens past the end of the teacher's tokens

// Student bytes [x, x + len) equal teacher bytes [y, y + len).
struct Run {
  int32_t x, y, len;
};

// How far ByteDiff may search. Time is O(N + M) plus at most `workBase + workPerByte * (N + M)`
// bytes compared or scanned in searches. A difference region is searched edit by edit (Myers) until
// anchorBytes equal bytes re-anchor it; one that needs more than maxEdits edits is skipped to the next
// anchorBytes-long student stretch found in the teacher's bytes nearby (it becomes one region). Past
// the budget, or with no such stretch, the rest of both streams is one difference region (one
// APPROX chunk). Search memory is (maxEdits + 1)^2 ints per worker.
struct DiffLimits {
  int32_t anchorBytes = 32;
  int32_t maxEdits = 1024;
  int64_t workPerByte = 64;
  int64_t workBase = int64_t(1) << 22;
};

// How the diff ended.
enum class DiffEnd : int32_t {
  kBoth = 0,           // both streams consumed
  kTeacherEnded = 1,   // teacher bytes consumed at (x, M), x < N, on a matched byte (or M = 0): the
                       // student bytes [x, N) may be a tail (BuildChunks decides, align.cc)
  kStudentEnded = 2,   // student bytes consumed at (N, y), y < M: teacher bytes [y, M) are extra
  kGaveUp = 3,         // limits reached at (x, y): the rest differs as one region
};

struct DiffResult {
  std::vector<Run> runs;  // sorted, disjoint, strictly increasing in x and y, len > 0
  DiffEnd end = DiffEnd::kBoth;
  int32_t x = 0, y = 0;   // where the diff stopped
  int64_t edits = 0;      // byte insertions + deletions of the edit script found
};

// Reusable scratch of one worker (Myers' V arrays); never shared between threads.
struct DiffScratch {
  std::vector<int32_t> v;      // all V_d arrays, V_d at offset d*d (2d+1 entries each)
};

// Bounded, anchored Myers over bytes (byte_diff.cc): linear on equal stretches, each difference
// region searched from its first differing byte until `anchorBytes` equal bytes (or a stream end).
// `truncated`: b (the teacher) was cut short, so a's bytes past b's end cost nothing (a prefix
// alignment); otherwise both streams are whole (a global alignment).
void ByteDiff(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, bool truncated, const DiffLimits& lim,
              DiffScratch& scratch, DiffResult& out);

// A chunk boundary: student token index i, teacher token index j, and the run it lies in (-1: none,
// the start or end of two streams that differ there).
struct Cut {
  int32_t i, j, run;
};

// The byte streams and cumulative offsets of one pair.
struct PairBytes {
  const int32_t* offS;  // [n + 1]
  const int32_t* offT;  // [m + 1]
  int32_t n, m;
  const uint8_t* bytesS;  // [offS[n]]
  const uint8_t* bytesT;  // [offT[m]]
};

// Synchronized boundaries inside runs (sync_cuts.cc): offsets in both sets, at the same place of a run,
// on a UTF-8 character boundary of both streams. Appends cuts in order; the caller adds the start
// and end. A zero-byte token joins the chunk before it.
void SyncCuts(const PairBytes& p, const std::vector<Run>& runs, std::vector<Cut>& cuts);

// What the caller knows of a pair's teacher ids (DESIGN 3.2): TAIL is for student tokens past the end
// of a teacher cut short. kInfer reads it from the bytes (align.cc, BuildChunks).
enum class TeacherIds : uint8_t {
  kInfer = 0,      // not said: a tail when the teacher's bytes end first, in a final run of equal
                   // bytes holding its whole last token and anchorBytes bytes or all its bytes
  kComplete = 1,   // the whole response: never TAIL; a difference at the end is one APPROX chunk
  kTruncated = 2,  // cut short: a prefix alignment; every student token past its end is TAIL
};

struct AlignOptions {
  int32_t maxChunkTokens = 6;
  const int32_t* studentEos = nullptr;  // sorted ids that end a student turn
  int32_t studentEosCount = 0;
  const int32_t* teacherEos = nullptr;  // sorted ids that end a teacher turn
  int32_t teacherEosCount = 0;
  DiffLimits diff;
};

// std::vector storage whose resize() leaves new elements uninitialised (outputs are always written).
template <typename T>
struct NoInitAlloc : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = NoInitAlloc<U>;
  };
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};
template <typename T>
using Buffer = std::vector<T, NoInitAlloc<T>>;

// Per-id facts of a (student, teacher) pair of tables, built once per pair (AlignTables binding):
// the fast path reads these small arrays instead of the byte tables (they stay in cache).
struct PairTables {
  const TokenTable* student = nullptr;
  const TokenTable* teacher = nullptr;
  std::vector<uint16_t> sLenCont;  // [student vocab]: byte length << 1 | (first byte is a continuation byte)
  std::vector<uint32_t> sSame;     // [student vocab]: 1 + a teacher id with exactly the same bytes (0: none),
                                   // | 1 << 31 when the first byte is a continuation byte
  std::vector<uint16_t> tLen;      // [teacher vocab]: byte length
  bool fast = true;                // every token is shorter than 2^15 bytes (else: general path only)
  int32_t sameBytesIds = 0;        // student ids with a byte-identical teacher id
  void Build(const TokenTable& studentTable, const TokenTable& teacherTable);
};

struct PairResult {
  Buffer<int32_t> sStart, sEnd, tStart, tEnd;
  Buffer<uint8_t> flags;
  Buffer<int32_t> studentChunk;  // [n]
  bool bytesEqual = true;             // the two streams were equal (no diff needed)
  int64_t edits = 0;                  // byte edits of the diff (0 when equal)
  int32_t diffEnd = 0;                // DiffEnd of the diff
  void Clear();
};

// Per-worker scratch for AlignPair.
struct AlignScratch {
  std::vector<int32_t> offS, offT;
  std::vector<uint8_t> bytesS, bytesT;
  std::vector<Cut> cuts;
  DiffResult diff;
  DiffScratch diffScratch;
};

// Optimised pair alignment (align.cc): one fused pass when the streams are equal (ids checked on
// the way), else AlignPairGeneral.
void AlignPair(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
               const AlignOptions& opt, TeacherIds teacher, AlignScratch& scratch, PairResult& out,
               const char* sName, const char* tName);
// The general path alone (ids checked first; throws E_TOKEN_ID naming sName/tName): offsets, byte
// streams, ByteDiff when they differ, SyncCuts, BuildChunks. AlignPair takes it whenever the fused
// pass does not finish; the dev addon can force it (native/dev/align.cc).
void AlignPairGeneral(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
                      const AlignOptions& opt, TeacherIds teacher, AlignScratch& scratch, PairResult& out,
                      const char* sName, const char* tName);

// How AlignBatch aligns one pair: AlignPair, or (dev addon) the general path or the reference.
using PairAligner = void (*)(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
                             const AlignOptions& opt, TeacherIds teacher, AlignScratch& scratch, PairResult& out,
                             const char* sName, const char* tName);

// A batch of pairs: pair k is (s[k], sLen[k]) against (t[k], tLen[k]), teacher[k] says whether its
// teacher ids are complete; pairs run on all cores, one pair at a time per worker in dynamic order.
void AlignBatch(const PairTables& pt, const int32_t* const* s, const size_t* sLen, const int32_t* const* t,
                const size_t* tLen, const TeacherIds* teacher, size_t B, const AlignOptions& opt,
                std::vector<PairResult>& out, PairAligner align = AlignPair);

// ---- shared by the kernels and their references (align_reference.cc) ----

// at is the start of a UTF-8 character of bytes[0, size) (or its end).
inline bool CharStart(const uint8_t* bytes, int32_t size, int32_t at) {
  return at >= size || (bytes[at] & 0xC0) != 0x80;  // not a UTF-8 continuation byte
}

// Appends the run (x, y, len), merged into the last one when it continues it.
inline void PushRun(std::vector<Run>& runs, int32_t x, int32_t y, int32_t len) {
  if (len <= 0) return;
  if (!runs.empty()) {
    Run& r = runs.back();
    if (r.x + r.len == x && r.y + r.len == y) {
      r.len += len;
      return;
    }
  }
  runs.push_back({x, y, len});
}

// The student ends with an end-of-turn id and so does the teacher: those two form a final 1:1 chunk.
bool EndOfTurnPair(const int32_t* s, int32_t n, const int32_t* t, int32_t m, const AlignOptions& opt);
// Chunks and flags of the body (ids [0, p.n) x [0, p.m)) from its cuts, runs and how the diff ended.
void BuildChunks(const PairBytes& p, const std::vector<Run>& runs, bool equal, const DiffResult* diff,
                 TeacherIds teacher, int32_t anchorBytes, std::vector<Cut>& cuts, PairResult& out);
// The end-of-turn chunk, OVERSIZE and the per-token chunk map of a pair of n and m tokens.
void FinishPair(int32_t n, int32_t m, bool eot, const AlignOptions& opt, PairResult& out);

}  // namespace align
}  // namespace xopd
