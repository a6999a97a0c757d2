// Synchronized boundaries (DESIGN section 3.1): inside each run of equal bytes, an offset that is in
// both sets (the same place of the run on both sides) and on a UTF-8 character boundary of both
// streams. SyncCuts finds them with one linear merge of the two cumulative offset arrays; the
// reference takes the definition literally (sets and maps). Both give, per boundary, the LAST token
// index at that offset on each side, so a zero-byte token joins the chunk before it.
#include <algorithm>
#include <map>
#include <set>

#include "align/align.h"

namespace xopd {
namespace align {
namespace {

inline bool CharStart(const uint8_t* bytes, int32_t size, int32_t at) {
  return at >= size || (bytes[at] & 0xC0) != 0x80;  // not a UTF-8 continuation byte
}

}  // namespace

void SyncCuts(const PairBytes& p, const std::vector<Run>& runs, std::vector<Cut>& cuts) {
  const int32_t* offS = p.offS;
  const int32_t* offT = p.offT;
  const int32_t n = p.n, m = p.m;
  const int32_t N = offS[n], M = offT[m];
  int32_t i = 0, j = 0;
  for (int32_t r = 0; r < static_cast<int32_t>(runs.size()); ++r) {
    const int32_t xs = runs[r].x, ys = runs[r].y, L = runs[r].len;
    const Cut last = cuts.back();
    // The previous run may have stepped past an offset this run starts at (a pure insertion on one side).
    while (i > last.i && offS[i - 1] >= xs) --i;
    while (j > last.j && offT[j - 1] >= ys) --j;
    while (i <= n && offS[i] < xs) ++i;
    while (j <= m && offT[j] < ys) ++j;
    int32_t lastX = offS[cuts.back().i], lastY = offT[cuts.back().j];
    while (i <= n && j <= m) {
      const int32_t dx = offS[i] - xs, dy = offT[j] - ys;
      if (dx > L || dy > L) break;
      if (dx < dy) {
        ++i;
        continue;
      }
      if (dy < dx) {
        ++j;
        continue;
      }
      while (i < n && offS[i + 1] == offS[i]) ++i;  // zero-byte tokens stay with the chunk before
      while (j < m && offT[j + 1] == offT[j]) ++j;
      const int32_t x = offS[i], y = offT[j];
      if ((x != lastX || y != lastY) && CharStart(p.bytesS, N, x) && (dx < L || CharStart(p.bytesT, M, y))) {
        cuts.push_back({i, j, r});
        lastX = x;
        lastY = y;
      }
      ++i;
      ++j;
    }
  }
}

void SyncCutsReference(const PairBytes& p, const std::vector<Run>& runs, std::vector<Cut>& cuts) {
  const int32_t N = p.offS[p.n], M = p.offT[p.m];
  // Offset -> last token index with that offset, on each side.
  std::map<int32_t, int32_t> lastS, lastT;
  for (int32_t i = 0; i <= p.n; ++i) lastS[p.offS[i]] = i;
  for (int32_t j = 0; j <= p.m; ++j) lastT[p.offT[j]] = j;
  std::set<int32_t> setT;
  for (auto& kv : lastT) setT.insert(kv.first);
  for (int32_t r = 0; r < static_cast<int32_t>(runs.size()); ++r) {
    const Run run = runs[r];
    for (auto it = lastS.lower_bound(run.x); it != lastS.end() && it->first <= run.x + run.len; ++it) {
      const int32_t x = it->first, y = run.y + (x - run.x);
      if (!setT.count(y)) continue;  // not an offset of the teacher at the same place
      const bool inside = x < run.x + run.len;
      if (!CharStart(p.bytesS, N, x)) continue;
      if (!inside && !CharStart(p.bytesT, M, y)) continue;
      const Cut& last = cuts.back();
      if (p.offS[last.i] == x && p.offT[last.j] == y) continue;  // the same place as the previous cut
      cuts.push_back({it->second, lastT[y], r});
    }
  }
}

}  // namespace align
}  // namespace xopd
