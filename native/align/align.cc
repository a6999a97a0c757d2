// One student/teacher pair: byte streams, runs (equal: one run; else ByteDiff), synchronized cuts,
// then chunks and flags (DESIGN 3.1-3.4):
//   - consecutive cuts make a chunk; it is exact when both cuts lie in the same run, else APPROX;
//   - a teacher that ends first (truncated): the chunk reaching past its last byte, and every student
//     token after it (one chunk each, no teacher tokens), are TAIL;
//   - OVERSIZE when either side has more than maxChunkTokens tokens;
//   - when the student ends with an end-of-turn id and so does the teacher, those two form a final
//     1:1 chunk and the rest is aligned without them.
#include <algorithm>
#include <cstring>

#include "align/align.h"
#include "common/errors.h"

namespace xopd {
namespace align {
namespace {

inline bool CharStart(const uint8_t* bytes, int32_t size, int32_t at) {
  return at >= size || (bytes[at] & 0xC0) != 0x80;
}

inline bool Contains(const int32_t* sorted, int32_t count, int32_t id) {
  return count > 0 && std::binary_search(sorted, sorted + count, id);
}

inline void AddChunk(PairResult& out, int32_t s0, int32_t s1, int32_t t0, int32_t t1, uint8_t flags) {
  out.sStart.push_back(s0);
  out.sEnd.push_back(s1);
  out.tStart.push_back(t0);
  out.tEnd.push_back(t1);
  out.flags.push_back(flags);
}

// Offsets and the concatenated bytes of ids (ids checked by the caller).
void Stream(const TokenTable& table, const int32_t* ids, int32_t n, std::vector<int32_t>& off,
            std::vector<uint8_t>& bytes) {
  off.resize(size_t(n) + 1);
  ByteOffsets(table, ids, n, off.data());
  bytes.resize(size_t(off[n]));
  uint8_t* dst = bytes.data();
  const uint8_t* src = table.bytes.data();
  const uint32_t* toff = table.offsets.data();
  for (int32_t i = 0; i < n; ++i) {
    const uint32_t a = toff[ids[i]], len = toff[ids[i] + 1] - a;
    std::memcpy(dst, src + a, len);
    dst += len;
  }
}

// Chunks of the body (ids [0, n) x [0, m)) from its cuts, runs and how the diff ended.
void BuildChunks(const PairBytes& p, const std::vector<Run>& runs, bool equal, const DiffResult* diff,
                 std::vector<Cut>& cuts, PairResult& out) {
  const int32_t n = p.n, m = p.m, N = p.offS[n], M = p.offT[m];
  const bool tail = !equal && diff->end == DiffEnd::kTeacherEnded;
  if (!tail) {
    // The end of both streams: inside the last run when it reaches both ends (or the streams are equal).
    int32_t endRun = equal ? 0 : (!runs.empty() && runs.back().x + runs.back().len == N &&
                                  runs.back().y + runs.back().len == M)
                                     ? int32_t(runs.size()) - 1
                                     : -1;
    const Cut& last = cuts.back();
    if (last.i != n || last.j != m) {
      if (p.offS[last.i] == N && p.offT[last.j] == M && last.run == endRun)
        cuts.back() = {n, m, endRun};  // only zero-byte tokens follow: they join the last chunk
      else
        cuts.push_back({n, m, endRun});
    }
  }
  for (size_t c = 1; c < cuts.size(); ++c) {
    const Cut& a = cuts[c - 1];
    const Cut& b = cuts[c];
    const bool exact = a.run >= 0 && a.run == b.run;
    AddChunk(out, a.i, b.i, a.j, b.j, exact ? 0 : kApprox);
  }
  if (tail) {
    // The teacher's bytes end at student byte xt; its last byte sits at the end of the last run if
    // the streams agree there.
    const int32_t xt = diff->x;
    const int32_t tailRun = (!runs.empty() && runs.back().x + runs.back().len == xt &&
                             runs.back().y + runs.back().len == M)
                                ? int32_t(runs.size()) - 1
                                : -1;
    const Cut& last = cuts.back();
    int32_t is = last.i;
    while (is < n && p.offS[is] < xt) ++is;  // first student token starting at or after xt
    const bool atCut = last.j == m && p.offS[last.i] == xt;
    if (!atCut) {
      // Student tokens that start before xt (one may reach past it) with the teacher's last tokens.
      uint8_t f = (last.run >= 0 && last.run == tailRun) ? 0 : kApprox;
      if (p.offS[is] > xt || !CharStart(p.bytesS, N, xt)) f |= kTail;
      AddChunk(out, last.i, is, last.j, m, f);
    }
    for (int32_t i = is; i < n; ++i) AddChunk(out, i, i + 1, m, m, kTail);
  }
}

}  // namespace

void PairResult::Clear() {
  sStart.clear();
  sEnd.clear();
  tStart.clear();
  tEnd.clear();
  flags.clear();
  studentChunk.clear();
  bytesEqual = true;
  edits = 0;
  diffEnd = 0;
}

// Shared tail of both implementations: the end-of-turn chunk, OVERSIZE, and the per-token chunk map.
static void Finish(int32_t n, int32_t m, bool eot, const AlignOptions& opt, PairResult& out) {
  if (eot) AddChunk(out, n - 1, n, m - 1, m, 0);
  const size_t C = out.flags.size();
  for (size_t c = 0; c < C; ++c) {
    if (out.sEnd[c] - out.sStart[c] > opt.maxChunkTokens || out.tEnd[c] - out.tStart[c] > opt.maxChunkTokens)
      out.flags[c] |= kOversize;
  }
  out.studentChunk.resize(size_t(n));
  for (size_t c = 0; c < C; ++c)
    for (int32_t i = out.sStart[c]; i < out.sEnd[c]; ++i) out.studentChunk[i] = int32_t(c);
}

static bool EndOfTurnPair(const int32_t* s, int32_t n, const int32_t* t, int32_t m, const AlignOptions& opt) {
  return n > 0 && m > 0 && Contains(opt.studentEos, opt.studentEosCount, s[n - 1]) &&
         Contains(opt.teacherEos, opt.teacherEosCount, t[m - 1]);
}

void AlignPair(const TokenTable& ts, const int32_t* s, int32_t n, const TokenTable& tt, const int32_t* t,
               int32_t m, const AlignOptions& opt, AlignScratch& w, PairResult& out) {
  out.Clear();
  const bool eot = EndOfTurnPair(s, n, t, m, opt);
  const int32_t nb = eot ? n - 1 : n, mb = eot ? m - 1 : m;
  if (nb > 0 || mb > 0) {
    Stream(ts, s, nb, w.offS, w.bytesS);
    Stream(tt, t, mb, w.offT, w.bytesT);
    const int32_t N = w.offS[nb], M = w.offT[mb];
    PairBytes p{w.offS.data(), w.offT.data(), nb, mb, w.bytesS.data(), w.bytesT.data()};
    const bool equal = N == M && std::memcmp(w.bytesS.data(), w.bytesT.data(), size_t(N)) == 0;
    out.bytesEqual = equal;
    std::vector<Run>& runs = w.diff.runs;
    if (equal) {
      runs.clear();
      if (N > 0) runs.push_back({0, 0, N});
    } else {
      ByteDiff(p.bytesS, N, p.bytesT, M, opt.diff, w.diffScratch, w.diff);
      out.edits = w.diff.edits;
      out.diffEnd = int32_t(w.diff.end);
    }
    w.cuts.clear();
    w.cuts.push_back({0, 0, equal || (!runs.empty() && runs[0].x == 0 && runs[0].y == 0) ? 0 : -1});
    SyncCuts(p, runs, w.cuts);
    BuildChunks(p, runs, equal, &w.diff, w.cuts, out);
  }
  Finish(n, m, eot, opt, out);
}

void AlignPairReference(const TokenTable& ts, const int32_t* s, int32_t n, const TokenTable& tt,
                        const int32_t* t, int32_t m, const AlignOptions& opt, PairResult& out) {
  out.Clear();
  const bool eot = EndOfTurnPair(s, n, t, m, opt);
  const int32_t nb = eot ? n - 1 : n, mb = eot ? m - 1 : m;
  if (nb > 0 || mb > 0) {
    // Byte streams token by token.
    std::vector<int32_t> offS(1, 0), offT(1, 0);
    std::vector<uint8_t> bytesS, bytesT;
    for (int32_t i = 0; i < nb; ++i) {
      for (uint32_t b = 0; b < ts.length(s[i]); ++b) bytesS.push_back(ts.data(s[i])[b]);
      offS.push_back(int32_t(bytesS.size()));
    }
    for (int32_t j = 0; j < mb; ++j) {
      for (uint32_t b = 0; b < tt.length(t[j]); ++b) bytesT.push_back(tt.data(t[j])[b]);
      offT.push_back(int32_t(bytesT.size()));
    }
    const bool equal = bytesS == bytesT;
    out.bytesEqual = equal;
    DiffResult diff;
    if (equal) {
      if (!bytesS.empty()) diff.runs.push_back({0, 0, int32_t(bytesS.size())});
    } else {
      ByteDiffReference(bytesS.data(), int32_t(bytesS.size()), bytesT.data(), int32_t(bytesT.size()), diff);
      out.edits = diff.edits;
      out.diffEnd = int32_t(diff.end);
    }
    PairBytes p{offS.data(), offT.data(), nb, mb, bytesS.data(), bytesT.data()};
    std::vector<Cut> cuts;
    cuts.push_back({0, 0, equal || (!diff.runs.empty() && diff.runs[0].x == 0 && diff.runs[0].y == 0) ? 0 : -1});
    SyncCutsReference(p, diff.runs, cuts);
    BuildChunks(p, diff.runs, equal, &diff, cuts, out);
  }
  Finish(n, m, eot, opt, out);
}

}  // namespace align
}  // namespace xopd
