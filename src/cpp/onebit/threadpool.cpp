#include "onebit/threadpool.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace onebit {

int default_num_threads() {
  if (const char* env = std::getenv("ONEBIT_NUM_THREADS"); env && *env) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

namespace {

class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }

  void run(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (threads <= 0) threads = default_num_threads();
    int64_t chunks = std::min<int64_t>(threads, n);
    if (chunks <= 1) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);  // one parallel region at a time
    ensure_workers(static_cast<int>(chunks) - 1);
    std::exception_ptr error;
    std::mutex error_mutex;
    std::function<void(int64_t)> task = [&](int64_t c) {
      int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      try {
        fn(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
    {
      std::lock_guard<std::mutex> g(mutex_);
      task_ = &task;
      chunks_ = chunks;
      next_ = 1;
      pending_ = chunks - 1;
      ++generation_;
    }
    cv_.notify_all();
    task(0);
    // The caller also helps with chunks the workers have not claimed yet.
    for (int64_t c; (c = claim(generation_snapshot())) >= 0;) {
      task(c);
      std::lock_guard<std::mutex> g(mutex_);
      --pending_;
    }
    std::unique_lock<std::mutex> lk(mutex_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    task_ = nullptr;
    lk.unlock();
    if (error) std::rethrow_exception(error);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) workers_.emplace_back([this] { loop(); });
  }

  uint64_t generation_snapshot() {
    std::lock_guard<std::mutex> g(mutex_);
    return generation_;
  }

  // Claims the next chunk of generation `gen` under the lock, so a worker that wakes late
  // can never take a chunk of a later call; -1 when none is left.
  int64_t claim(uint64_t gen) {
    std::lock_guard<std::mutex> g(mutex_);
    if (!task_ || gen != generation_ || next_ >= chunks_) return -1;
    return next_++;
  }

  void loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(mutex_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      lk.unlock();
      for (int64_t c; (c = claim(seen)) >= 0;) {
        (*task_)(c);  // task_ stays valid until pending_ reaches 0
        std::lock_guard<std::mutex> g(mutex_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
      lk.lock();
    }
  }

  std::mutex call_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t chunks_ = 0;
  int64_t pending_ = 0;
  int64_t next_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  Pool::get().run(n, threads, fn);
}

}  // namespace onebit
