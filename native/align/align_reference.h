// The plain references of the aligner's kernels (dev addon only): each computes what its kernel
// computes the obvious way, so tests can compare the two (test/align-native.test.ts).
#pragma once
#include <cstdint>
#include <vector>

#include "align/align.h"
#include "tokenizer/token_table.h"

namespace xopd {
namespace align {

// ByteDiff's edit metric (insertions + deletions) by the O(n*m) dynamic program, with ByteDiff's
// tie-breaks and account of the end (byte_diff_reference.cc). Small inputs only: (n+1)*(m+1) <= 2^22,
// else E_TOO_LONG.
void ByteDiffReference(const uint8_t* a, int32_t n, const uint8_t* b, int32_t m, bool truncated, DiffResult& out);

// SyncCuts' boundaries from the definition: set intersection per run, then the boundary checks
// (sync_cuts_reference.cc).
void SyncCutsReference(const PairBytes& p, const std::vector<Run>& runs, std::vector<Cut>& cuts);

// AlignPair the plain way (align_reference.cc): byte streams token by token, ByteDiffReference when
// they differ, SyncCutsReference, then the chunks and flags of BuildChunks. Ids are not checked.
void AlignPairReference(const TokenTable& ts, const int32_t* s, int32_t n, const TokenTable& tt,
                        const int32_t* t, int32_t m, const AlignOptions& opt, TeacherIds teacher, PairResult& out);

}  // namespace align
}  // namespace xopd
