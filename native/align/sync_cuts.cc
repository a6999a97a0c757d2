// Synchronized boundaries (DESIGN section 3.1): inside each run of equal bytes, an offset that is in
// both sets (the same place of the run on both sides) and on a UTF-8 character boundary of both
// streams. SyncCuts finds them with one linear merge of the two cumulative offset arrays; its
// reference (sync_cuts_reference.cc) takes the definition literally. Both give, per boundary, the
// LAST token index at that offset on each side, so a zero-byte token joins the chunk before it.
#include "align/align.h"

namespace xopd {
namespace align {

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

}  // namespace align
}  // namespace xopd
