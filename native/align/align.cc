// One student/teacher pair: byte streams, runs (equal: one run; else ByteDiff), synchronized cuts,
// then chunks and flags (DESIGN 3.1-3.4):
//   - consecutive cuts make a chunk; it is exact when both cuts lie in the same run, else APPROX;
//   - a truncated teacher: the chunk reaching past its last byte, and every student token after it
//     (one chunk each, no teacher tokens), are TAIL. The caller says whether it cut the teacher
//     (TeacherIds): cut short, the diff is a prefix alignment and the rest of the student is the
//     tail; whole, there is no tail. Not said, it is read from the bytes: the teacher's bytes end
//     first, in a final run of equal bytes that holds its whole last token and at least anchorBytes
//     bytes or all its bytes (a prefix of the student's text, after any earlier differences). A
//     teacher cut from the retokenized student response looks so unless the cut falls less than
//     anchorBytes after a differing region (the rest is then APPROX: masked all the same, or, when
//     the teacher's last bytes recur close after, matched there). Any other end, a difference in the
//     last bytes included, is one APPROX chunk holding both sides' differing tokens (DESIGN 3.2, 3.3);
//   - OVERSIZE when either side has more than maxChunkTokens tokens;
//   - when the student ends with an end-of-turn id and so does the teacher, those two form a final
//     1:1 chunk and the rest is aligned without them.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "align/align.h"
#include "common/errors.h"
#include "common/threads.h"

namespace xopd {
namespace align {
namespace {

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

}  // namespace

void BuildChunks(const PairBytes& p, const std::vector<Run>& runs, bool equal, const DiffResult* diff,
                 TeacherIds teacher, int32_t anchorBytes, std::vector<Cut>& cuts, PairResult& out) {
  const int32_t n = p.n, m = p.m, N = p.offS[n], M = p.offT[m];
  bool tail = !equal && diff->end == DiffEnd::kTeacherEnded && teacher != TeacherIds::kComplete;
  if (tail && teacher == TeacherIds::kInfer && M > 0) {
    // The diff ended on a matched teacher byte. A teacher cut short ends in re-synchronized text:
    // the final run holds its whole last token (the last one with bytes) and either anchorBytes
    // bytes (what re-anchors the diff after a difference) or all the teacher's bytes. A match found
    // by the stream-end search inside a difference region (a lone combining mark matched to an
    // earlier one) does not.
    int32_t last = m - 1;
    while (last > 0 && p.offT[last] == M) --last;
    tail = !runs.empty() && runs.back().y <= p.offT[last] && (runs.back().len >= anchorBytes || runs.back().y == 0);
  }
  if (!tail) {
    // The end of both streams: inside the last run when it reaches both ends (or the streams are equal).
    int32_t endRun = equal ? 0 : (!runs.empty() && runs.back().x + runs.back().len == N &&
                                  runs.back().y + runs.back().len == M)
                                     ? int32_t(runs.size()) - 1
                                     : -1;
    const Cut& last = cuts.back();
    if (last.i != n || last.j != m) {
      if (cuts.size() > 1 && p.offS[last.i] == N && p.offT[last.j] == M && last.run == endRun)
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

void FinishPair(int32_t n, int32_t m, bool eot, const AlignOptions& opt, PairResult& out) {
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

bool EndOfTurnPair(const int32_t* s, int32_t n, const int32_t* t, int32_t m, const AlignOptions& opt) {
  return n > 0 && m > 0 && Contains(opt.studentEos, opt.studentEosCount, s[n - 1]) &&
         Contains(opt.teacherEos, opt.teacherEosCount, t[m - 1]);
}

namespace {

// len bytes at p and q equal; short strings compare as one masked 8-byte word when both can be read.
inline bool EqualBytes(const uint8_t* p, const uint8_t* pEnd, const uint8_t* q, const uint8_t* qEnd, uint32_t len) {
  if (len <= 8 && pEnd - p >= 8 && qEnd - q >= 8) {
    uint64_t a, b;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, q, 8);
    const uint64_t mask = len == 8 ? ~uint64_t(0) : ((uint64_t(1) << (8 * len)) - 1);
    return ((a ^ b) & mask) == 0;
  }
  return std::memcmp(p, q, len) == 0;
}

// The bytes of student tokens [a0, a1) equal those of teacher tokens [b0, b1) (same total length).
bool ChunkBytesEqual(const TokenTable& ts, const int32_t* s, int32_t a0, int32_t a1, const TokenTable& tt,
                     const int32_t* t, int32_t b0, int32_t b1) {
  const uint32_t* os = ts.offsets.data();
  const uint32_t* ot = tt.offsets.data();
  const uint8_t* bs = ts.bytes.data();
  const uint8_t* bt = tt.bytes.data();
  const uint8_t* es = bs + ts.bytes.size();
  const uint8_t* et = bt + tt.bytes.size();
  if (a1 - a0 == 1 && b1 - b0 == 1) {
    const uint32_t len = os[s[a0] + 1] - os[s[a0]];
    return EqualBytes(bs + os[s[a0]], es, bt + ot[t[b0]], et, len);
  }
  const uint8_t* pb = nullptr;
  uint32_t lb = 0;
  for (int32_t a = a0; a < a1; ++a) {
    const uint8_t* pa = bs + os[s[a]];
    uint32_t la = os[s[a] + 1] - os[s[a]];
    while (la > 0) {
      if (lb == 0) {
        if (b0 >= b1) return false;
        pb = bt + ot[t[b0]];
        lb = ot[t[b0] + 1] - ot[t[b0]];
        ++b0;
        continue;
      }
      const uint32_t k = la < lb ? la : lb;
      if (!EqualBytes(pa, es, pb, et, k)) return false;
      pa += k;
      pb += k;
      la -= k;
      lb -= k;
    }
  }
  return lb == 0 && b0 == b1;
}

enum class Fast { kDone, kDiffer, kBadId };

// The common case in one pass, without building offsets or byte streams: merge the two running byte
// counts; at each synchronized boundary check that the chunk's bytes agree (a 1:1 chunk whose ids are
// byte-identical needs no byte access). Ids are range-checked as they are read. kDiffer: the streams
// differ or a zero-byte token occurs; kBadId: an id is outside its vocabulary. Either way `out` is
// rebuilt by the caller.
Fast AlignEqualStreams(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
                       int32_t maxTok, PairResult& out) {
  const uint16_t* slen = pt.sLenCont.data();
  const uint32_t* same = pt.sSame.data();
  constexpr uint32_t kId = 0x7FFFFFFFu;
  const uint16_t* tlen = pt.tLen.data();
  const uint32_t vs = uint32_t(pt.sLenCont.size()), vt = uint32_t(pt.tLen.size());
  const size_t cap = size_t(std::min(n, m)) + 2;
  out.sStart.resize(cap);
  out.sEnd.resize(cap);
  out.tStart.resize(cap);
  out.tEnd.resize(cap);
  out.flags.resize(cap);
  out.studentChunk.resize(size_t(n) + 1);
  int32_t* s0 = out.sStart.data();
  int32_t* s1 = out.sEnd.data();
  int32_t* t0 = out.tStart.data();
  int32_t* t1 = out.tEnd.data();
  uint8_t* fl = out.flags.data();
  int32_t* sc = out.studentChunk.data();
  int64_t X = 0, Y = 0;  // bytes of student tokens [ci, i) and teacher tokens [cj, j)
  int32_t i = 0, j = 0, ci = 0, cj = 0, c = 0;
  uint32_t nextInfo = 0;  // lenCont of student token i (valid when i < n)
  if (n > 0) {
    if (uint32_t(s[0]) >= vs) return Fast::kBadId;
    nextInfo = slen[s[0]];
  }
  for (;;) {
    if (X == Y && (i > ci || j > cj)) {
      // Both sides end here; a boundary when the next byte starts a character (or nothing follows).
      if (i == n || !(nextInfo & 1)) {
        const bool sameIds = i - ci == 1 && j - cj == 1 && (same[s[ci]] & kId) == uint32_t(t[cj]) + 1;
        if (!sameIds && !ChunkBytesEqual(*pt.student, s, ci, i, *pt.teacher, t, cj, j)) return Fast::kDiffer;
        s0[c] = ci;
        s1[c] = i;
        t0[c] = cj;
        t1[c] = j;
        fl[c] = (i - ci > maxTok || j - cj > maxTok) ? kOversize : 0;
        for (int32_t k = ci; k < i; ++k) sc[k] = c;
        ++c;
        ci = i;
        cj = j;
        X = Y = 0;  // only X - Y matters
      }
    }
    if (i == ci && j == cj) {
      // At a boundary: runs of byte-identical 1:1 pairs need neither lengths nor bytes, only that the
      // next student token starts a character.
      while (i < n && j < m) {
        const int32_t sv = s[i], tv = t[j];
        if (uint32_t(sv) >= vs || uint32_t(tv) >= vt) return Fast::kBadId;
        if ((same[sv] & kId) != uint32_t(tv) + 1) break;
        if (i + 1 < n) {
          const int32_t sn = s[i + 1];
          if (uint32_t(sn) >= vs) return Fast::kBadId;
          if (same[sn] >> 31) break;  // mid-character: the general merge takes this pair
        }
        s0[c] = i;
        s1[c] = i + 1;
        t0[c] = j;
        t1[c] = j + 1;
        fl[c] = 0;
        sc[i] = c;
        ++c;
        ++i;
        ++j;
      }
      ci = i;
      cj = j;
      if (i < n) nextInfo = slen[s[i]];  // s[i] was checked above, or is i = 0 (checked on entry)
    }
    if (X <= Y && i < n) {
      const uint32_t len = nextInfo >> 1;
      if (len == 0) return Fast::kDiffer;
      X += len;
      if (++i < n) {
        if (uint32_t(s[i]) >= vs) return Fast::kBadId;
        nextInfo = slen[s[i]];
      }
    } else if (j < m) {
      if (uint32_t(t[j]) >= vt) return Fast::kBadId;
      const uint32_t len = tlen[t[j]];
      if (len == 0) return Fast::kDiffer;
      Y += len;
      ++j;
    } else {
      break;
    }
  }
  if (X != Y || ci != n || cj != m) return Fast::kDiffer;
  out.sStart.resize(c);
  out.sEnd.resize(c);
  out.tStart.resize(c);
  out.tEnd.resize(c);
  out.flags.resize(c);
  out.studentChunk.resize(size_t(n));
  return Fast::kDone;
}

}  // namespace

void PairTables::Build(const TokenTable& st, const TokenTable& tt) {
  student = &st;
  teacher = &tt;
  const int32_t vs = st.vocab(), vt = tt.vocab();
  fast = true;
  tLen.resize(size_t(vt));
  std::unordered_map<std::string_view, int32_t> byBytes;
  byBytes.reserve(size_t(vt) * 2);
  for (int32_t id = 0; id < vt; ++id) {
    const uint32_t len = tt.length(id);
    if (len >= (1u << 15)) fast = false;
    tLen[id] = uint16_t(len);
    if (len == 0) continue;
    std::string_view key(reinterpret_cast<const char*>(tt.data(id)), len);
    auto it = byBytes.find(key);
    if (it == byBytes.end()) byBytes.emplace(key, id);
    else if (tt.special[it->second] && !tt.special[id]) it->second = id;  // prefer an ordinary token
  }
  sLenCont.resize(size_t(vs));
  sSame.resize(size_t(vs));
  XOPD_CHECK(vt < INT32_MAX, "E_TOKEN_TABLE", "the teacher vocabulary is too large");
  sameBytesIds = 0;
  for (int32_t id = 0; id < vs; ++id) {
    const uint32_t len = st.length(id);
    if (len >= (1u << 15)) fast = false;
    const bool cont = len > 0 && (st.data(id)[0] & 0xC0) == 0x80;
    int32_t sameId = -1;
    if (len > 0) {
      auto it = byBytes.find(std::string_view(reinterpret_cast<const char*>(st.data(id)), len));
      if (it != byBytes.end()) {
        sameId = it->second;
        ++sameBytesIds;
      }
    }
    sLenCont[id] = uint16_t(((len & 0x7FFF) << 1) | (cont ? 1u : 0u));
    sSame[id] = uint32_t(sameId + 1) | (cont ? 0x80000000u : 0u);
  }
}

void AlignPair(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
               const AlignOptions& opt, TeacherIds teacher, AlignScratch& w, PairResult& out,
               const char* sName, const char* tName) {
  out.Clear();
  const bool eot = EndOfTurnPair(s, n, t, m, opt);
  const int32_t nb = eot ? n - 1 : n, mb = eot ? m - 1 : m;
  if (pt.fast && nb > 0 && mb > 0) {
    if (AlignEqualStreams(pt, s, nb, t, mb, opt.maxChunkTokens, out) == Fast::kDone) {
      if (eot) {
        AddChunk(out, n - 1, n, m - 1, m, 0);
        out.studentChunk.push_back(int32_t(out.flags.size()) - 1);
      }
      return;
    }
  }
  AlignPairGeneral(pt, s, n, t, m, opt, teacher, w, out, sName, tName);
}

void AlignPairGeneral(const PairTables& pt, const int32_t* s, int32_t n, const int32_t* t, int32_t m,
                      const AlignOptions& opt, TeacherIds teacher, AlignScratch& w, PairResult& out,
                      const char* sName, const char* tName) {
  const TokenTable& ts = *pt.student;
  const TokenTable& tt = *pt.teacher;
  out.Clear();
  const bool eot = EndOfTurnPair(s, n, t, m, opt);
  const int32_t nb = eot ? n - 1 : n, mb = eot ? m - 1 : m;
  CheckIds(ts, s, size_t(n), sName);
  CheckIds(tt, t, size_t(m), tName);
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
      ByteDiff(p.bytesS, N, p.bytesT, M, teacher == TeacherIds::kTruncated, opt.diff, w.diffScratch, w.diff);
      out.edits = w.diff.edits;
      out.diffEnd = int32_t(w.diff.end);
    }
    w.cuts.clear();
    w.cuts.push_back({0, 0, equal || (!runs.empty() && runs[0].x == 0 && runs[0].y == 0) ? 0 : -1});
    SyncCuts(p, runs, w.cuts);
    BuildChunks(p, runs, equal, &w.diff, teacher, opt.diff.anchorBytes, w.cuts, out);
  }
  FinishPair(n, m, eot, opt, out);
}

void AlignBatch(const PairTables& pt, const int32_t* const* s, const size_t* sLen, const int32_t* const* t,
                const size_t* tLen, const TeacherIds* teacher, size_t B, const AlignOptions& opt,
                std::vector<PairResult>& out, PairAligner align) {
  for (size_t k = 0; k < B; ++k)
    XOPD_CHECK(sLen[k] < size_t(INT32_MAX) && tLen[k] < size_t(INT32_MAX), "E_TOO_LONG", "a sequence is longer than 2^31 - 1 tokens");
  out.resize(B);
  std::atomic<size_t> next{0};
  const size_t workers = std::min<size_t>(B, size_t(ThreadCount()));
  ParallelFor(workers, [&](size_t, size_t, int) {
    thread_local AlignScratch scratch;
    for (size_t k = next.fetch_add(1); k < B; k = next.fetch_add(1)) {
      char sn[48], tn[48];
      std::snprintf(sn, sizeof sn, "studentIds[%zu]", k);
      std::snprintf(tn, sizeof tn, "teacherIds[%zu]", k);
      align(pt, s[k], int32_t(sLen[k]), t[k], int32_t(tLen[k]), opt, teacher[k], scratch, out[k], sn, tn);
    }
  }, 1);
}

}  // namespace align
}  // namespace xopd
