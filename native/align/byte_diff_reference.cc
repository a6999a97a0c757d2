// ByteDiffReference: the textbook O(n*m) dynamic program of the edit metric ByteDiff minimises
// (insertions + deletions), with the same tie-breaks and the same account of how the diff ended, so
// tests can compare ByteDiff's runs and costs with it (dev addon only; small inputs).
// `truncated`: the teacher (b) was cut short, so the student's bytes past its end cost nothing.
#include <algorithm>
#include <vector>

#include "align/align_reference.h"
#include "common/errors.h"

namespace xopd {
namespace align {

void ByteDiffReference(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, bool truncated, DiffResult& out) {
  XOPD_CHECK(int64_t(n + 1) * (m + 1) <= (int64_t(1) << 22), "E_TOO_LONG",
             "the reference diff is for small inputs: (n+1)*(m+1) must be at most 2^22");
  // D[i][j]: fewest insertions + deletions turning a[i:] into b[j:] (truncated: into b[j:] followed
  // by anything, i.e. a's bytes past b's end are free).
  const int32_t W = m + 1;
  std::vector<int32_t> D(size_t(n + 1) * W);
  for (int32_t i = n; i >= 0; --i) {
    for (int32_t j = m; j >= 0; --j) {
      int32_t& v = D[size_t(i) * W + j];
      if (i == n) v = m - j;
      else if (j == m) v = truncated ? 0 : n - i;
      else if (a[i] == b[j]) v = D[size_t(i + 1) * W + j + 1];
      else v = 1 + std::min(D[size_t(i + 1) * W + j], D[size_t(i) * W + j + 1]);
    }
  }
  out.runs.clear();
  out.edits = D[0];
  out.end = DiffEnd::kBoth;
  int32_t i = 0, j = 0;
  bool ended = false, matched = false;  // matched: the last step was a matching byte
  while (i < n || j < m) {
    // The teacher's bytes used up first: the rest is a tail when the teacher was cut short, or its
    // last byte matched (or it has none). Reached by an insertion instead, the rest is deleted
    // student bytes (both end), as ByteDiff.
    if (!ended && j == m && i < n && (truncated || m == 0 || matched)) {
      out.end = DiffEnd::kTeacherEnded;
      out.x = i;
      out.y = j;
      ended = true;
    }
    if (!ended && i == n && j < m) {
      out.end = DiffEnd::kStudentEnded;
      out.x = i;
      out.y = j;
      ended = true;
    }
    matched = i < n && j < m && a[i] == b[j];
    if (matched) {
      PushRun(out.runs, i, j, 1);
      ++i, ++j;
    } else if (j < m && (i == n || D[size_t(i) * W + j + 1] <= D[size_t(i + 1) * W + j])) {
      ++j;  // insertion first on ties, as ByteDiff
    } else {
      ++i;
    }
  }
  if (!ended) {
    out.x = n;
    out.y = m;
  }
  // As ByteDiff: edits of the aligned part (a tail or extra teacher bytes are not edits; a free tail
  // is not in D).
  out.edits -= (truncated && out.end == DiffEnd::kTeacherEnded ? 0 : n - out.x) + (m - out.y);
}

}  // namespace align
}  // namespace xopd
