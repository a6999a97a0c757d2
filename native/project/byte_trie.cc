#include "project/byte_trie.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace xopd {
namespace project {

void BuildByteTrie(const uint8_t* data, const std::vector<uint32_t>& starts, const std::vector<uint32_t>& lengths,
                   const std::vector<int32_t>& values, ByteTrie& out) {
  // Keys sorted lexicographically: every node's keys are then a contiguous range, and its
  // children's ranges follow in byte order.
  std::vector<uint32_t> order;
  order.reserve(starts.size());
  for (uint32_t i = 0; i < starts.size(); ++i)
    if (lengths[i] > 0) order.push_back(i);
  auto less = [&](uint32_t a, uint32_t b) {
    const uint32_t la = lengths[a], lb = lengths[b];
    const int c = std::memcmp(data + starts[a], data + starts[b], std::min(la, lb));
    return c != 0 ? c < 0 : la != lb ? la < lb : values[a] < values[b];  // repeated bytes: by value
  };
  std::sort(order.begin(), order.end(), less);
  auto byteAt = [&](uint32_t key, uint32_t depth) { return data[starts[key] + depth]; };

  out.first.clear();
  out.label.clear();
  out.child.clear();
  out.token.clear();
  out.rangeLo.clear();
  out.rangeHi.clear();
  out.depth.clear();
  out.root.assign(256, -1);
  out.maxDepth = 0;
  out.order.resize(order.size());
  for (size_t r = 0; r < order.size(); ++r) out.order[r] = values[order[r]];
  // Breadth-first: nodes are numbered in the order they are expanded, so each node's edges are
  // appended contiguously and `first` is a valid CSR. A queue entry is (node, lo, hi, depth).
  struct Item {
    int32_t node;
    uint32_t lo, hi, depth;
  };
  std::vector<Item> queue;
  queue.push_back({0, 0, static_cast<uint32_t>(order.size()), 0});
  out.token.push_back(-1);
  for (size_t q = 0; q < queue.size(); ++q) {
    const Item it = queue[q];
    out.first.push_back(static_cast<int32_t>(out.label.size()));
    out.rangeLo.push_back(static_cast<int32_t>(it.lo));  // nodes are expanded in the order they are numbered
    out.rangeHi.push_back(static_cast<int32_t>(it.hi));
    out.depth.push_back(static_cast<int32_t>(it.depth));
    uint32_t lo = it.lo;
    // Keys that end here (sorted first within the range): this node's token.
    while (lo < it.hi && lengths[order[lo]] == it.depth) {
      out.token[it.node] = std::max(out.token[it.node], values[order[lo]]);
      ++lo;
    }
    while (lo < it.hi) {
      const uint8_t b = byteAt(order[lo], it.depth);
      uint32_t hi = lo + 1;
      while (hi < it.hi && byteAt(order[hi], it.depth) == b) ++hi;
      const int32_t c = static_cast<int32_t>(out.token.size());
      out.token.push_back(-1);
      out.label.push_back(b);
      out.child.push_back(c);
      if (it.node == 0) out.root[b] = c;
      queue.push_back({c, lo, hi, it.depth + 1});
      out.maxDepth = std::max<int32_t>(out.maxDepth, static_cast<int32_t>(it.depth + 1));
      lo = hi;
    }
  }
  out.first.push_back(static_cast<int32_t>(out.label.size()));
}

}  // namespace project
}  // namespace xopd
