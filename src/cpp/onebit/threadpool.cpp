#include "onebit/threadpool.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
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
constexpr int kDefaultSpinUs = 100;
}  // namespace

int pool_spin_us() {
  static const int us = [] {
    if (const char* env = std::getenv("ONEBIT_SPIN_US"); env && *env) {
      const int v = std::atoi(env);
      return v < 0 ? 0 : v;
    }
    return kDefaultSpinUs;
  }();
  return us;
}

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  std::this_thread::yield();
#endif
}

// Spins until pred() or `us` microseconds passed; true when pred() held. Every ~128 pauses
// (a few microseconds) it yields the CPU: free on an idle core, and on an oversubscribed one a
// spinning thread then does not hold back a runnable thread (possibly the one it waits for).
template <class Pred>
bool spin_until(Pred pred, int us) {
  if (pred()) return true;
  if (us <= 0) return false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (int i = 1;; ++i) {
    for (int k = 0; k < 16; ++k) {
      if (pred()) return true;
      cpu_relax();
    }
    if ((i & 7) == 0) {
      if (std::chrono::steady_clock::now() >= end) return pred();
      std::this_thread::yield();
    }
  }
}

// One parallel region at a time (call_mutex_). A region is its task (task_) and one atomic word
// state_ = generation << 32 | chunk count << 16 | next unclaimed chunk: a claim is a CAS on
// that word, so it succeeds only for the generation the claimer has seen and never past that
// generation's chunk count; a worker that wakes late can never take a chunk of a later region.
// pending_ counts unfinished chunks; the caller returns when it reaches 0, so task_ (read only
// after a successful claim) stays valid while any chunk of its region runs.
//
// Waiting: workers spin for pool_spin_us() after their last chunk before sleeping on cv_, and
// the caller spins as long for the last chunk before sleeping on done_cv_; so back-to-back
// kernels (a network's ops) never pay a futex wake-up. Sleep/wake use the sleepers_ /
// caller_sleeping_ flags (seq_cst, Dekker style) so a notification is never lost and never
// sent when nobody sleeps.
// True on a thread while it runs a chunk of a parallel region (worker or caller): a
// parallel_for from inside a chunk then runs inline on that thread (the pool holds one region at
// a time, so waiting for it there would deadlock).
thread_local bool t_in_region = false;

class Pool {
 public:
  static Pool& get() {
    static Pool pool;
    return pool;
  }

  void run(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (threads <= 0) threads = default_num_threads();
    if (threads <= 1 || n == 1 || t_in_region) {
      fn(0, n);
      return;
    }
    // Up to 4 chunks per thread, claimed dynamically: a thread that starts late (a preempted
    // vCPU) still finds work, and one that finishes early takes more.
    const int64_t chunks = std::min<int64_t>({n, int64_t{4} * threads, int64_t{0xFFFF}});
    const int helpers = static_cast<int>(std::min<int64_t>(threads, chunks)) - 1;  // workers that may join
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    ensure_workers(helpers);
    std::exception_ptr error;
    std::mutex error_mutex;
    std::function<void(int64_t)> task = [&](int64_t c) {
      const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      try {
        fn(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
    task_ = &task;
    active_.store(helpers, std::memory_order_relaxed);
    pending_.store(chunks, std::memory_order_relaxed);
    const uint64_t gen = (state_.load(std::memory_order_relaxed) >> 32) + 1;
    // publishes task_, active_ and pending_ to every thread that reads this generation
    state_.store(gen << 32 | static_cast<uint64_t>(chunks) << 16, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> g(mutex_);
      cv_.notify_all();
    }
    t_in_region = true;
    work(gen);
    t_in_region = false;
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, pool_spin_us())) {
      std::unique_lock<std::mutex> lk(mutex_);
      caller_sleeping_.store(true, std::memory_order_seq_cst);
      done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_seq_cst) == 0; });
      caller_sleeping_.store(false, std::memory_order_relaxed);
    }
    if (error) std::rethrow_exception(error);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mutex_);
      stop_.store(true);
      cv_.notify_all();
    }
    for (auto& t : workers_) t.join();
  }

 private:
  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int id = static_cast<int>(workers_.size());
      const uint64_t gen = state_.load(std::memory_order_relaxed) >> 32;  // before the new one
      workers_.emplace_back([this, id, gen] { loop(id, gen); });
    }
  }

  // Claims and runs chunks of generation `gen` until none is left.
  void work(uint64_t gen) {
    for (;;) {
      uint64_t s = state_.load(std::memory_order_acquire);
      int64_t c;
      do {
        c = static_cast<int64_t>(s & 0xFFFF);
        if ((s >> 32) != gen || c >= static_cast<int64_t>((s >> 16) & 0xFFFF)) return;
      } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel));
      (*task_)(c);
      if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
          caller_sleeping_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> g(mutex_);
        done_cv_.notify_one();
      }
    }
  }

  void loop(int id, uint64_t seen) {
    for (;;) {
      auto fresh = [&] {
        return stop_.load(std::memory_order_seq_cst) ||
               (state_.load(std::memory_order_seq_cst) >> 32) != seen;
      };
      if (!spin_until(fresh, pool_spin_us())) {
        std::unique_lock<std::mutex> lk(mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lk, fresh);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = state_.load(std::memory_order_acquire) >> 32;
      if (id < active_.load(std::memory_order_relaxed)) {  // others stay idle
        t_in_region = true;
        work(seen);
        t_in_region = false;
      }
    }
  }

  std::mutex call_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  std::atomic<int> active_{0};
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace

int threads_for(int64_t work, int64_t min_work, int threads) {
  if (threads <= 0) threads = default_num_threads();
  const int64_t worth = min_work > 0 ? work / min_work : threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, worth)));
}

void check_threads(int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 1 (or 0/None for the default)");
}

void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn) {
  Pool::get().run(n, threads, fn);
}

}  // namespace onebit
