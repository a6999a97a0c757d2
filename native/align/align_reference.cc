// AlignPairReference: one pair aligned the plain way, for tests of AlignPair (dev addon only).
// The byte streams are built token by token, a difference goes to the O(n*m) ByteDiffReference and
// the boundaries to SyncCutsReference; the chunks and flags then come from the same BuildChunks and
// FinishPair as the kernel's (align.cc): what this checks is the fused pass, ByteDiff and SyncCuts.
#include <vector>

#include "align/align_reference.h"

namespace xopd {
namespace align {

void AlignPairReference(const TokenTable& ts, const int32_t* s, int32_t n, const TokenTable& tt,
                        const int32_t* t, int32_t m, const AlignOptions& opt, TeacherIds teacher, PairResult& out) {
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
      ByteDiffReference(bytesS.data(), int32_t(bytesS.size()), bytesT.data(), int32_t(bytesT.size()),
                        teacher == TeacherIds::kTruncated, diff);
      out.edits = diff.edits;
      out.diffEnd = int32_t(diff.end);
    }
    PairBytes p{offS.data(), offT.data(), nb, mb, bytesS.data(), bytesT.data()};
    std::vector<Cut> cuts;
    cuts.push_back({0, 0, equal || (!diff.runs.empty() && diff.runs[0].x == 0 && diff.runs[0].y == 0) ? 0 : -1});
    SyncCutsReference(p, diff.runs, cuts);
    BuildChunks(p, diff.runs, equal, &diff, teacher, opt.diff.anchorBytes, cuts, out);
  }
  FinishPair(n, m, eot, opt, out);
}

}  // namespace align
}  // namespace xopd
