// Byte-level diff of a student and a teacher byte stream (DESIGN section 3.3).
//
// ByteDiff: walk both streams; equal stretches are one comparison loop (8 bytes a step). At the first
// differing byte, Myers' greedy search (edits = insertions + deletions) runs from there until some
// diagonal has `anchorBytes` equal bytes in a row, or reaches a stream end; the shortest edit path to
// that anchor is read back from the stored V arrays and its inner snakes become runs. Then the walk
// goes on from the anchor. Every search is capped (maxEdits, a global work budget), so the whole diff
// is O(N + M) time with a bounded constant; what is past a cap is one difference region.
// Its plain reference, the textbook O(n*m) dynamic program of the same metric, is byte_diff_reference.cc.
// `truncated`: the teacher (b) was cut short, so the student's bytes past its end cost nothing.
#include <algorithm>
#include <cstring>
#include <functional>
#include <string>

#include "align/align.h"

namespace xopd {
namespace align {
namespace {

constexpr int32_t kNone = INT32_MIN / 4;  // V entry of a diagonal no path reaches inside the box

// Length of the common prefix of a and b (at most n bytes), 8 bytes a step.
inline int32_t CommonPrefix(const uint8_t* a, const uint8_t* b, int32_t n) {
  int32_t i = 0;
  while (i + 8 <= n) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    uint64_t d = x ^ y;
    if (d) return i + (__builtin_ctzll(d) >> 3);  // little-endian: lowest set byte is the first mismatch
    i += 8;
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// V_d lives at v[d*d .. d*d + 2d], diagonal k at index d*d + k + d.
inline int32_t* VRow(std::vector<int32_t>& v, int32_t d) { return v.data() + int64_t(d) * d; }

// The point on diagonal k right after the d-th edit (before its snake), from V_{d-1}; kNone when no
// path of d edits reaches diagonal k inside the n x m box. fromK is the diagonal it came from.
// Ties go down (an insertion: a teacher byte) before right (a deletion: a student byte).
inline int32_t EditPoint(const int32_t* prev, int32_t d, int32_t k, int32_t n, int32_t m, int32_t& fromK) {
  if (d == 0) {
    fromK = 0;
    return 0;
  }
  int32_t down = kNone, right = kNone;
  if (k + 1 <= d - 1) {
    int32_t x = prev[k + 1 + d - 1];
    if (x != kNone && x - k <= m) down = x;  // y = x - k after moving down
  }
  if (k - 1 >= -(d - 1)) {
    int32_t x = prev[k - 1 + d - 1];
    if (x != kNone && x + 1 <= n) right = x + 1;
  }
  if (down == kNone && right == kNone) return kNone;
  if (down >= right) {
    fromK = k + 1;
    return down;
  }
  fromK = k - 1;
  return right;
}

enum class Anchor { kNone, kSnake, kEnd };

struct SearchResult {
  Anchor anchor = Anchor::kNone;
  int32_t d = 0, k = 0;
  int32_t x = 0, y = 0;     // where the walk resumes (relative)
  int32_t pathEnd = 0;      // x where the recorded path ends on diagonal k (relative)
  int64_t cost = 0;         // edits to reach both stream ends this way (a stream-end anchor)
  int32_t rank = 0;         // among equal costs: 0 teacher ended on a matched byte, 1 both, 2 student ended
};

// Greedy Myers from (0, 0) over a[0, n) and b[0, m) (a[0] != b[0]). Anchors:
//  - a snake of K equal bytes: the walk resumes at its start (the first one found, smallest d);
//  - a stream end. Reaching (n, m) after d edits costs d. Reaching only one end costs d plus the
//    other stream's remaining bytes (deleted student bytes or extra teacher bytes), except that
//    with `truncated` the student's bytes past the teacher's end cost nothing (a prefix alignment:
//    the teacher was cut short there). Such a point is kept as a candidate while the search goes
//    on to that cost, so a cheaper way wins. Equal costs prefer (global) the teacher's bytes ending
//    on a snake (its last byte matched: the streams agree where the teacher stops), then both
//    ends, then the student ending first; a teacher end reached by an insertion (its last byte
//    unmatched) is no better than deleting the student's remaining bytes: it ranks and ends as both
//    (ByteDiff). With `truncated`: both ends (more bytes matched), then a teacher end on a snake,
//    then one on an insertion, then the student ending first.
SearchResult MyersAnchor(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, bool truncated,
                         const DiffLimits& lim, int64_t& budget, DiffScratch& scratch) {
  SearchResult best;  // best stream-end candidate so far
  const int32_t maxD = int32_t(std::min<int64_t>(lim.maxEdits, int64_t(n) + m));
  const int32_t K = std::max(1, lim.anchorBytes);
  for (int32_t d = 0; d <= maxD; ++d) {
    if (best.anchor != Anchor::kNone && d >= best.cost) return best;
    size_t need = size_t(d + 1) * size_t(d + 1);
    if (scratch.v.size() < need) scratch.v.resize(std::max(need, scratch.v.size() * 2), kNone);
    int32_t* cur = VRow(scratch.v, d);
    const int32_t* prev = d > 0 ? VRow(scratch.v, d - 1) : nullptr;
    std::fill(cur, cur + 2 * d + 1, kNone);
    for (int32_t k = -d; k <= d; k += 2) {
      int32_t from = 0;
      const int32_t x0 = EditPoint(prev, d, k, n, m, from);
      if (x0 == kNone) continue;
      const int32_t y0 = x0 - k;
      int32_t x = x0, y = y0, s = 0;
      while (x < n && y < m && s < K && a[x] == b[y]) ++x, ++y, ++s;
      budget -= s + 1;
      cur[k + d] = x;
      if (s >= K) return {Anchor::kSnake, d, k, x0, y0, x0, 0, 0};
      if (x == n || y == m) {
        const bool teacherEnd = y == m && x < n;
        const int64_t cost = int64_t(d) + (truncated && teacherEnd ? 0 : n - x) + (m - y);
        const int32_t rank = truncated ? (!teacherEnd ? (y == m ? 0 : 3) : s > 0 ? 1 : 2)
                                       : (teacherEnd ? (s > 0 ? 0 : 1) : y == m ? 1 : 2);
        if (best.anchor == Anchor::kNone || cost < best.cost || (cost == best.cost && rank < best.rank))
          best = {Anchor::kEnd, d, k, x, y, x, cost, rank};
        if (x == n && y == m) return best;  // both ends after d edits: every later candidate costs more
      }
    }
    if (budget < 0) break;
  }
  return best;
}

// Reads the edit path of a search back through the V arrays; appends its snakes (relative + base).
void ReadPath(const SearchResult& r, int32_t n, int32_t m, DiffScratch& scratch, int32_t bx, int32_t by,
              std::vector<Run>& tmp) {
  tmp.clear();
  int32_t d = r.d, k = r.k, end = r.pathEnd;
  for (;;) {
    int32_t from = 0;
    const int32_t* prev = d > 0 ? VRow(scratch.v, d - 1) : nullptr;
    int32_t start = EditPoint(prev, d, k, n, m, from);
    if (end > start) tmp.push_back({bx + start, by + start - k, end - start});
    if (d == 0) break;
    end = prev[from + d - 1];
    k = from;
    --d;
  }
  std::reverse(tmp.begin(), tmp.end());
}

// After a failed search at (x, y): probe student positions x + K, x + 2K, x + 4K, ... and look for
// the K bytes there among the teacher's bytes from y up to about twice as far (plus 4 KiB). The
// first hit, moved back over the equal bytes before it, re-anchors the walk at (px, py). Work (the
// bytes searched) is charged to the budget.
bool Resync(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, int32_t x, int32_t y, const DiffLimits& lim,
            int64_t& budget, int32_t& px, int32_t& py) {
  const int64_t K = std::max(1, lim.anchorBytes);
  for (int64_t d = K; x + d + K <= n && budget >= 0; d *= 2) {
    const int64_t end = std::min<int64_t>(m, y + 2 * d + 4096 + K);
    if (end - y < K) return false;
    const uint8_t* key = a + x + d;
    const uint8_t* hit = std::search(b + y, b + end, std::boyer_moore_horspool_searcher<const uint8_t*>(key, key + K));
    budget -= end - y;
    if (hit != b + end) {
      // Probes double, so the hit may lie well inside the equal stretch: walk back to where it starts.
      int64_t ax = x + d, by = hit - b;
      while (ax > x && by > y && a[ax - 1] == b[by - 1]) --ax, --by;
      budget -= (x + d) - ax;
      px = int32_t(ax);
      py = int32_t(by);
      return true;
    }
  }
  return false;
}

}  // namespace

void ByteDiff(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, bool truncated, const DiffLimits& lim,
              DiffScratch& scratch, DiffResult& out) {
  out.runs.clear();
  out.edits = 0;
  int64_t budget = lim.workBase + lim.workPerByte * (int64_t(n) + m);
  int32_t x = 0, y = 0;
  std::vector<Run> path;
  for (;;) {
    int32_t L = CommonPrefix(a + x, b + y, std::min(n - x, m - y));
    PushRun(out.runs, x, y, L);
    x += L;
    y += L;
    if (x == n && y == m) {
      out.end = DiffEnd::kBoth;
      break;
    }
    if (y == m) {
      // The teacher's bytes are used up first. A teacher cut short has a tail here. Otherwise only
      // where the streams agree on its last byte (or it has none) can the rest of the student be a
      // tail; else the rest is deleted bytes of the last difference region.
      const bool matchedEnd = !out.runs.empty() && out.runs.back().x + out.runs.back().len == x &&
                              out.runs.back().y + out.runs.back().len == y;
      if (truncated || m == 0 || matchedEnd) {
        out.end = DiffEnd::kTeacherEnded;
      } else {
        out.end = DiffEnd::kBoth;
        out.edits += n - x;
        x = n;
      }
      break;
    }
    if (x == n) {
      out.end = DiffEnd::kStudentEnded;
      break;
    }
    if (budget < 0) {
      out.end = DiffEnd::kGaveUp;
      break;
    }
    SearchResult r = MyersAnchor(a + x, n - x, b + y, m - y, truncated, lim, budget, scratch);
    if (r.anchor == Anchor::kNone) {
      // Too different for the edit search: find the next place where anchorBytes student bytes
      // occur in the teacher's nearby bytes, and make everything up to it one region.
      int32_t px, py;
      if (!Resync(a, n, b, m, x, y, lim, budget, px, py)) {
        out.end = DiffEnd::kGaveUp;
        break;
      }
      out.edits += int64_t(px - x) + (py - y);
      x = px;
      y = py;
      continue;
    }
    ReadPath(r, n - x, m - y, scratch, x, y, path);
    for (const Run& p : path) PushRun(out.runs, p.x, p.y, p.len);
    out.edits += r.d;
    x += r.x;
    y += r.y;
  }
  out.x = x;
  out.y = y;
}

}  // namespace align
}  // namespace xopd
