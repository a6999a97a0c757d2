// Sparse span projection (DESIGN 5), CPU path and the host side of every call (span_projection.h):
// the projector's tables, the checks, the row planner, the rows on the CPU, and the CSR.
#include "project/span_projection.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/cuda_info.h"
#include "common/errors.h"
#include "common/threads.h"
#include "project/span_cuda.h"

namespace xopd {
namespace project {

namespace {

constexpr uint8_t kApprox = 2, kTail = 4;  // alignment chunk flags (align/align.h)

double CheckedProb(float lp, const char* name, size_t at) {
  XOPD_CHECK(!std::isnan(lp) && lp <= 1e-3f, "E_ARG_VALUE",
             std::string(name) + "[" + std::to_string(at) + "] = " + std::to_string(lp) + " is not a log-probability (NaN, or a probability above 1)");
  return ProbOf(lp);
}

// The bytes of tokens ids[a .. b) of table t, appended to out.
void AppendBytes(const TokenTable& t, const int32_t* ids, int32_t a, int32_t b, std::vector<uint8_t>& out) {
  for (int32_t i = a; i < b; ++i) out.insert(out.end(), t.data(ids[i]), t.data(ids[i]) + t.length(ids[i]));
}

// Byte offsets of both sides and scratch, shared by the chunks of one call.
struct PlanContext {
  std::vector<int32_t> so, to;  // [n + 1], [m + 1]: byte offset of each student / teacher token
  std::vector<uint8_t> bs, bt;  // one chunk's student and teacher bytes
};

// The rows of one chunk: every row starts as kNone (their ids set), then
//  - no teacher text for these bytes (APPROX or TAIL chunk, or one side empty): kNone;
//  - the two sides' bytes differ, one token each (the end-of-turn pair): project at that position;
//  - the same bytes: each row j walks teacher positions k..m covering its bytes [o_j, e_j)
//    (kCertain for a token with no bytes); the chunk's last row takes the rest of the chunk.
void PlanChunk(const SpanTables& tables, const ProjectInput& in, size_t c, PlanContext& ctx, RowPlan& plan) {
  const TokenTable& st = *tables.student;
  const TokenTable& tt = *tables.teacher;
  const int32_t s0 = in.studentStart[c], s1 = in.studentEnd[c], t0 = in.teacherStart[c], t1 = in.teacherEnd[c];
  for (int32_t j = s0; j < s1; ++j) plan.tasks[j] = RowTask{0, 0, 0, tables.outIndex[in.studentIds[j]], 0, 0, RowWalk::kNone};
  if ((in.flags[c] & (kApprox | kTail)) || s1 == s0 || t1 == t0) return;
  const bool counted = (in.flags[c] & ~in.includeFlags) == 0;
  ctx.bs.clear();
  ctx.bt.clear();
  AppendBytes(st, in.studentIds, s0, s1, ctx.bs);
  AppendBytes(tt, in.teacherIds, t0, t1, ctx.bt);
  if (ctx.bs != ctx.bt) {
    if (s1 - s0 == 1 && t1 - t0 == 1) {
      RowTask& task = plan.tasks[s0];
      task.k = task.m = t0;
      task.walk = RowWalk::kProject;
      plan.mask[s0] = counted;
    }
    return;
  }
  const std::vector<int32_t>& so = ctx.so;
  const std::vector<int32_t>& to = ctx.to;
  int32_t last = -1;
  for (int32_t j = s0; j < s1; ++j)
    if (so[j + 1] > so[j]) last = j;
  const int32_t base = to[t0] - so[s0];  // teacher offset = student offset + base inside this chunk
  int32_t i = t0;
  bool first = true;
  for (int32_t j = s0; j < s1; ++j) {
    RowTask& task = plan.tasks[j];
    plan.mask[j] = counted;
    const int32_t o = so[j] + base, e = so[j + 1] + base;
    if (e == o) {
      task.walk = RowWalk::kCertain;
      continue;
    }
    if (first) {
      i = t0;
      first = false;
    } else {
      while (i < t1 && to[i + 1] <= o) ++i;  // first teacher token ending after o
    }
    int32_t mm = i;
    // up to the token covering e - 1, plus zero-byte tokens sitting at e
    while (mm + 1 < t1 && (to[mm + 1] < e || (to[mm + 1] == e && to[mm + 2] == e))) ++mm;
    if (j == last) mm = t1 - 1;
    task.k = i;
    task.m = mm;
    task.uLen = o - to[i];
    task.walk = RowWalk::kProject;
  }
}

}  // namespace

SpanTables::~SpanTables() {
#ifdef XOPD_WITH_CUDA
  if (device) cuda::FreeTables(device);
#endif
}

void BuildSpanTables(const TokenTable& st, const TokenTable& tt, const int32_t* studentVocab, size_t studentVocabSize,
                     const int32_t* teacherEos, size_t teacherEosCount, int32_t studentEot, SpanTables& out) {
  out.student = &st;
  out.teacher = &tt;
  const int32_t vs = st.vocab(), vt = tt.vocab();
  out.outIndex.assign(static_cast<size_t>(vs), -1);
  if (!studentVocab) {
    for (int32_t i = 0; i < vs; ++i) out.outIndex[i] = i;
    out.outputSize = vs;
  } else {
    XOPD_CHECK(studentVocabSize >= 1, "E_ARG_VALUE", "studentVocab must list at least one id");
    for (size_t k = 0; k < studentVocabSize; ++k) {
      const int32_t id = studentVocab[k];
      XOPD_CHECK(id >= 0 && id < vs, "E_TOKEN_ID", "studentVocab[" + std::to_string(k) + "] = " + std::to_string(id) + " is outside the student vocabulary");
      XOPD_CHECK(out.outIndex[id] < 0, "E_ARG_VALUE", "studentVocab lists id " + std::to_string(id) + " twice");
      out.outIndex[id] = static_cast<int32_t>(k);
    }
    out.outputSize = static_cast<int32_t>(studentVocabSize);
  }

  // The trie over the non-special student tokens the student can emit (tokenizer ids, then
  // mapped to output indices: a repeated byte string keeps the largest tokenizer id).
  std::vector<uint32_t> starts, lengths;
  std::vector<int32_t> values;
  for (int32_t id = 0; id < vs; ++id) {
    if (out.outIndex[id] < 0 || st.special[id]) continue;
    starts.push_back(st.offsets[id]);
    lengths.push_back(st.length(id));
    values.push_back(id);
  }
  BuildByteTrie(st.bytes.data(), starts, lengths, values, out.trie);
  for (int32_t& t : out.trie.token)
    if (t >= 0) t = out.outIndex[t];
  out.rankOf.assign(static_cast<size_t>(out.outputSize), -1);
  for (size_t r = 0; r < out.trie.order.size(); ++r) {
    out.trie.order[r] = out.outIndex[out.trie.order[r]];
    out.rankOf[out.trie.order[r]] = static_cast<int32_t>(r);
  }

  // Special teacher tokens: the student special token with the same content, else (for a
  // teacher end-of-turn id) the student's end of turn; none -> -1 (the mass stays in the tail).
  std::unordered_map<std::string, int32_t> studentSpecial;
  for (int32_t id = 0; id < vs; ++id)
    if (st.special[id] && out.outIndex[id] >= 0 && st.length(id) > 0)
      studentSpecial.emplace(std::string(reinterpret_cast<const char*>(st.data(id)), st.length(id)), out.outIndex[id]);
  out.specialMap.assign(static_cast<size_t>(vt), -1);
  const int32_t eotOut = studentEot >= 0 && studentEot < vs ? out.outIndex[studentEot] : -1;
  std::vector<uint8_t> isEos(static_cast<size_t>(vt), 0);
  for (size_t k = 0; k < teacherEosCount; ++k)
    if (teacherEos[k] >= 0 && teacherEos[k] < vt) isEos[teacherEos[k]] = 1;
  for (int32_t id = 0; id < vt; ++id) {
    if (!tt.special[id]) continue;
    auto it = studentSpecial.find(std::string(reinterpret_cast<const char*>(tt.data(id)), tt.length(id)));
    if (it != studentSpecial.end()) out.specialMap[id] = it->second;
    else if (isEos[id]) out.specialMap[id] = eotOut;
  }
}

void CheckProjectInput(const SpanTables& tables, const ProjectInput& in) {
  const size_t n = in.n, m = in.m, K = static_cast<size_t>(in.K);
  XOPD_CHECK(n >= 1, "E_ARG_SHAPE", "studentIds is empty: nothing to project");
  CheckIds(*tables.student, in.studentIds, n, "studentIds");
  CheckIds(*tables.teacher, in.teacherIds, m, "teacherIds");
  CheckIds(*tables.teacher, in.topkIds, m * K, "teacher.topkIds");
  for (size_t j = 0; j < n; ++j)
    XOPD_CHECK(tables.outIndex[in.studentIds[j]] >= 0, "E_TOKEN_ID",
               "studentIds[" + std::to_string(j) + "] = " + std::to_string(in.studentIds[j]) + " is not in studentVocab (ids the student can emit)");
  int32_t s = 0, t = 0;
  for (size_t c = 0; c < in.chunks; ++c) {
    XOPD_CHECK(in.studentStart[c] == s && in.studentEnd[c] >= in.studentStart[c] && in.teacherStart[c] == t &&
                   in.teacherEnd[c] >= in.teacherStart[c],
               "E_ARG_VALUE", "alignment chunk " + std::to_string(c) + " does not continue the previous one");
    s = in.studentEnd[c];
    t = in.teacherEnd[c];
  }
  XOPD_CHECK(static_cast<size_t>(s) == n && static_cast<size_t>(t) == m, "E_ARG_SHAPE",
             "the alignment covers " + std::to_string(s) + " student and " + std::to_string(t) + " teacher tokens, but " +
                 std::to_string(n) + " and " + std::to_string(m) + " were given");
  std::vector<int32_t> seen;
  for (size_t i = 0; i < m; ++i) {
    double mass = CheckedProb(in.logprobs[i], "teacher.logprobs", i);
    seen.assign(in.topkIds + i * K, in.topkIds + (i + 1) * K);
    std::sort(seen.begin(), seen.end());
    XOPD_CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end(), "E_ARG_VALUE",
               "teacher.topkIds at position " + std::to_string(i) + " lists an id twice");
    for (size_t c = 0; c < K; ++c) {
      const double p = CheckedProb(in.topkLogprobs[i * K + c], "teacher.topkLogprobs", i * K + c);
      if (in.topkIds[i * K + c] != in.teacherIds[i]) mass += p;
    }
    XOPD_CHECK(mass <= 1.0 + 1e-3, "E_ARG_VALUE",
               "teacher probabilities at position " + std::to_string(i) + " sum to " + std::to_string(mass) + " > 1");
  }
}

void PlanRows(const SpanTables& tables, const ProjectInput& in, RowPlan& plan) {
  PlanContext ctx;
  ctx.so.resize(in.n + 1);
  ctx.to.resize(in.m + 1);
  ByteOffsets(*tables.student, in.studentIds, in.n, ctx.so.data());
  ByteOffsets(*tables.teacher, in.teacherIds, in.m, ctx.to.data());
  plan.tasks.assign(in.n, RowTask{});
  plan.mask.assign(in.n, 0);
  for (size_t c = 0; c < in.chunks; ++c) PlanChunk(tables, in, c, ctx, plan);
  plan.slots = 0;
  for (RowTask& t : plan.tasks) {
    t.cap = RowSlotsNeeded(t, in.K);
    t.at = plan.slots;
    plan.slots += t.cap;
  }
}

void RunRows(SpanTables& tables, const ProjectInput& in, const RowPlan& plan, Device device, RowSlots& out) {
  const size_t n = in.n;
  out.ids.resize(static_cast<size_t>(plan.slots));
  out.probs.resize(static_cast<size_t>(plan.slots));
  out.count.assign(n, 0);
  const TokenTable& tt = *tables.teacher;
  const TeacherView tv{in.teacherIds, in.logprobs, in.topkIds, in.topkLogprobs, in.K};
  const TokenBytesView tb{tt.bytes.data(), tt.offsets.data(), tt.special.data()};
  if (device == Device::kCuda) {
    XOPD_CHECK(in.projection == Projection::kFirst, "E_CUDA_UNAVAILABLE",
               "grouped buckets run on the CPU in this build: project with device 'cpu' (or 'auto'), or with projection 'first'");
#ifdef XOPD_WITH_CUDA
    RequireCudaDevice();
    cuda::HostTables host{&tables.trie, tb, static_cast<size_t>(tt.vocab()), tt.bytes.size(), tables.specialMap.data()};
    cuda::RowsArgs a{plan.tasks.data(), n, tv, in.m, plan.slots, out.ids.data(), out.probs.data(), out.count.data()};
    const std::string err = cuda::ProjectRows(&tables.device, host, a);
    if (!err.empty()) throw Error("E_CUDA", err);
#else
    throw CudaNotBuilt();
#endif
    return;
  }
  const TrieView trie = tables.trie.View();
  const bool prefix = in.projection == Projection::kPrefix;
  const PrefixGroupsView groups{tables.trie.rangeLo.data(), tables.trie.rangeHi.data(), tables.trie.depth.data(), tables.rankOf.data(),
                                static_cast<int32_t>(in.m)};
  out.nodes.assign(prefix ? static_cast<size_t>(plan.slots) : 0, -1);
  ParallelFor(n, [&](size_t b, size_t e, int) {
    for (size_t j = b; j < e; ++j) {
      const RowTask& t = plan.tasks[j];
      out.count[j] = ProjectRow(t, tv, tb, trie, tables.specialMap.data(), out.ids.data() + t.at, out.probs.data() + t.at,
                                prefix ? &groups : nullptr, prefix ? out.nodes.data() + t.at : nullptr);
    }
  }, 64);
}

int64_t CsrEntries(const RowSlots& rows) {
  int64_t nnz = 0;
  for (int32_t c : rows.count) nnz += c;
  XOPD_CHECK(nnz <= INT32_MAX, "E_TOO_LONG", "the projection has more than 2^31 entries");
  return nnz;
}

void WriteCsr(const SpanTables& tables, const RowPlan& plan, const RowSlots& rows, const CsrView& out) {
  struct Entry {
    int32_t id, lo, hi;  // a single id: (id, 0, 0); a group: (-1, lo, hi)
    double p;
    bool operator<(const Entry& o) const {  // single ids by id, then groups by lo, the widest first
      if ((id < 0) != (o.id < 0)) return id >= 0;
      if (id != o.id) return id < o.id;
      return lo != o.lo ? lo < o.lo : hi > o.hi;
    }
  };
  const bool groups = !rows.nodes.empty();
  std::vector<Entry> row;
  int32_t at = 0;
  out.rowPtr[0] = 0;
  for (size_t j = 0; j < plan.tasks.size(); ++j) {
    row.clear();
    const int64_t first = plan.tasks[j].at;
    for (int32_t s = 0; s < rows.count[j]; ++s) {
      const int32_t v = groups ? rows.nodes[first + s] : -1;
      if (v < 0) row.push_back(Entry{rows.ids[first + s], 0, 0, rows.probs[first + s]});
      else row.push_back(Entry{-1, tables.trie.rangeLo[v], tables.trie.rangeHi[v], rows.probs[first + s]});
    }
    std::sort(row.begin(), row.end());
    double sum = 0.0;
    for (auto& e : row) sum += e.p;
    const double scale = sum > 1.0 ? 1.0 / sum : 1.0;  // rounding only: the events are disjoint
    for (auto& e : row) {
      out.ids[at] = e.id;
      out.probs[at] = static_cast<float>(e.p * scale);
      if (out.lo) {
        out.lo[at] = e.lo;
        out.hi[at] = e.hi;
      }
      ++at;
    }
    out.rowPtr[j + 1] = at;
    out.tail[j] = static_cast<float>(sum >= 1.0 ? 0.0 : 1.0 - sum);
    out.mask[j] = plan.mask[j];
  }
}

}  // namespace project
}  // namespace xopd
