// A small, reusable worker pool: ParallelFor(n, fn) splits [0, n) into contiguous ranges.
// Thread count: XOPD_THREADS, else the hardware concurrency.
#pragma once
#include <cstddef>
#include <functional>

namespace xopd {

int ThreadCount();
void SetThreadCount(int n);
// Calls fn(begin, end, worker) on contiguous ranges covering [0, n); runs inline when small.
void ParallelFor(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t minPerThread = 1);

}  // namespace xopd
