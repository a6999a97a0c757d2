// SyncCutsReference: the synchronized boundaries of DESIGN 3.1 taken from the definition (the set
// of offsets of each side, their intersection at the same place of each run, then the UTF-8
// boundary checks), for tests of SyncCuts' linear merge (dev addon only). As SyncCuts, a boundary
// takes the LAST token index at its offset on each side.
#include <map>
#include <set>

#include "align/align_reference.h"

namespace xopd {
namespace align {

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
