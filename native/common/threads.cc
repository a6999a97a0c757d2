#include "common/threads.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace xopd {
namespace {

int DefaultThreads() {
  if (const char* env = std::getenv("XOPD_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return std::min(n, 256);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 256u));
}

int g_threads = 0;
thread_local bool t_inRegion = false;  // nested ParallelFor runs inline instead of deadlocking

// Persistent pool: spawning threads per call would dominate the small kernels.
class Pool {
 public:
  static Pool& Get() {
    static Pool* pool = new Pool();  // leaked on purpose: no join at process exit
    return *pool;
  }

  void Run(int workers, const std::function<void(int)>& task) {
    std::lock_guard<std::mutex> one(callMutex_);  // one parallel region at a time
    Ensure(workers - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      task_ = &task;
      active_ = workers - 1;
      pending_ = workers - 1;
      ++generation_;
    }
    cv_.notify_all();
    std::exception_ptr mine;
    try {
      task(0);
    } catch (...) {
      mine = std::current_exception();
    }
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [&] { return pending_ == 0; });
    task_ = nullptr;
    std::exception_ptr err = mine ? mine : error_;
    error_ = nullptr;
    lk.unlock();
    if (err) std::rethrow_exception(err);
  }

 private:
  void Ensure(int n) {
    while (static_cast<int>(threads_.size()) < n) {
      int id = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, id] { Loop(id); });
      threads_.back().detach();
    }
  }

  void Loop(int id) {
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int)>* task;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (id > active_) continue;
        task = task_;
      }
      std::exception_ptr err;
      try {
        (*task)(id);
      } catch (...) {
        err = std::current_exception();
      }
      std::lock_guard<std::mutex> lk(m_);
      if (err && !error_) error_ = err;
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex callMutex_, m_;
  std::condition_variable cv_, done_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* task_ = nullptr;
  int active_ = 0, pending_ = 0;
  unsigned long generation_ = 0;
  std::exception_ptr error_;
};

}  // namespace

int ThreadCount() {
  if (g_threads == 0) g_threads = DefaultThreads();
  return g_threads;
}

void SetThreadCount(int n) { g_threads = std::max(1, std::min(n, 256)); }

void ParallelFor(size_t n, const std::function<void(size_t, size_t, int)>& fn, size_t minPerThread) {
  if (n == 0) return;
  size_t maxWorkers = std::max<size_t>(1, n / std::max<size_t>(1, minPerThread));
  int workers = static_cast<int>(std::min<size_t>(ThreadCount(), maxWorkers));
  if (workers <= 1 || t_inRegion) {
    fn(0, n, 0);
    return;
  }
  Pool::Get().Run(workers, [&](int w) {
    bool outer = t_inRegion;
    t_inRegion = true;
    size_t begin = n * w / workers, end = n * (w + 1) / workers;
    try {
      if (begin < end) fn(begin, end, w);
    } catch (...) {
      t_inRegion = outer;
      throw;
    }
    t_inRegion = outer;
  });
}

}  // namespace xopd
