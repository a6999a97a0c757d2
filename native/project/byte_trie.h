// A byte trie of a student vocabulary (DESIGN 5): `first(x)`, the longest student token that is a
// prefix of x, is a walk down it. Flat arrays (CSR children, sorted labels) so the same structure
// is read by the CPU path and, copied once, by the CUDA path.
// The keys sorted by their bytes (`order`) make the keys below any node one contiguous range
// [rangeLo, rangeHi) of that order: the prefix group G(x) of DESIGN 5 (revision 2) is the range of
// the node x leads to.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/cuda_macros.h"

namespace xopd {
namespace project {

// Read-only view of a trie (host or device pointers).
struct TrieView {
  const int32_t* first;   // [nodes + 1]: children of node v are edges first[v] .. first[v+1]-1
  const uint8_t* label;   // [edges] sorted within a node
  const int32_t* child;   // [edges]
  const int32_t* token;   // [nodes]: output index of the token whose bytes end at v, or -1
  const int32_t* root;    // [256]: the root's child per byte (-1 none), a direct table
};

// The child of node v along byte b, or -1.
XOPD_HD int32_t TrieChild(const TrieView& t, int32_t v, uint8_t b) {
  if (v == 0) return t.root[b];
  int32_t lo = t.first[v], hi = t.first[v + 1];
  while (lo < hi) {  // binary search over the sorted labels
    const int32_t mid = (lo + hi) >> 1;
    const uint8_t l = t.label[mid];
    if (l == b) return t.child[mid];
    if (l < b) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

struct ByteTrie {
  std::vector<int32_t> first, child, token, root;
  std::vector<uint8_t> label;
  int32_t maxDepth = 0;
  // Every key's value (repeats included) in byte order of the keys (ties by value), and per node
  // the range of that order holding the keys that begin with the node's bytes, and its depth.
  std::vector<int32_t> order, rangeLo, rangeHi, depth;

  TrieView View() const { return TrieView{first.data(), label.data(), child.data(), token.data(), root.data()}; }
  size_t Bytes() const {
    return (first.size() + child.size() + token.size() + root.size() + order.size() + rangeLo.size() + rangeHi.size() +
            depth.size()) * 4 + label.size();
  }
};

// Builds the trie of keys[i] = bytes [data + offsets[i], data + offsets[i+1]) with output value
// values[i]; a key repeated takes the largest value (SentencePiece vocabularies list the <0xNN>
// byte-fallback pieces first, before the ordinary piece with the same bytes, which is the one the
// tokenizer emits). Empty keys are ignored.
void BuildByteTrie(const uint8_t* data, const std::vector<uint32_t>& starts, const std::vector<uint32_t>& lengths,
                   const std::vector<int32_t>& values, ByteTrie& out);

}  // namespace project
}  // namespace xopd
