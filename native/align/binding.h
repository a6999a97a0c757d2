// What the dev addon's align binding (native/dev/align.cc) shares with the shipped one: the
// alignBatch call around a chosen pair aligner, and a diff result as a JS object.
#pragma once
#include "align/align.h"
#include "common/binding.h"

namespace xopd {
namespace align {

// alignBatch(alignTables, studentIds[], teacherIds[], opts) with each pair aligned by `align`; its
// arguments checked and its flat result arrays as binding.cc describes. Throws xopd::Error (the
// caller's Guard turns it into a JS error).
Napi::Value AlignBatchCall(const Napi::CallbackInfo& info, PairAligner align);

// { runs (x, y, len triples), end, x, y, edits }
Napi::Object DiffResultObject(Napi::Env env, const DiffResult& r);

}  // namespace align
}  // namespace xopd
