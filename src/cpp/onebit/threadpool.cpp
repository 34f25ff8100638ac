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

// True on a thread while it runs a chunk of a parallel region (worker or caller): a
// parallel_for from inside a chunk then runs inline on that thread (the workers may all be busy
// with the regions that wait for it).
thread_local bool t_in_region = false;

// Most workers the pool keeps, whatever the callers ask for together.
int max_workers() {
  static const int m = std::max(8, 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return m;
}

// One parallel region: its chunks, claimed by fetch_add on `next` (a chunk index >= chunks
// claims nothing), run by its caller and by up to `helpers` workers.
struct Job {
  const std::function<void(int64_t)>* task = nullptr;
  int64_t chunks = 0;
  int helpers = 0;
  int joined = 0;                    // workers that took this job (Pool::mutex_)
  std::atomic<int64_t> next{0};      // next unclaimed chunk
  std::atomic<int64_t> pending{0};   // unfinished chunks
  std::atomic<int> inside{0};        // workers holding a pointer to it (changed under Pool::mutex_)
};

// Several regions at once: every caller posts its region (a Job on its stack) to jobs_ and runs
// its chunks itself, and idle workers join posted regions that want more threads; so regions of
// different calling threads (two Sessions, or one Session run from several threads) run side by
// side, and each one finishes even when every worker is busy elsewhere (its caller alone runs
// what nobody else claimed). The pool grows to the helpers the posted regions ask for together
// (at most max_workers()).
//
// Lifetime: a worker joins a job only under mutex_, only while it is listed and has an
// unclaimed chunk, and counts itself in job.inside until it leaves (under mutex_). The caller
// returns once every chunk finished and, under mutex_, no worker is inside; it unlists the job
// then, so no worker touches a Job after its caller returned.
//
// Waiting: workers spin for pool_spin_us() on epoch_ (bumped by every post) before sleeping on
// cv_, and a caller spins as long for its last chunk before sleeping on done_cv_; so
// back-to-back kernels (a network's ops) never pay a futex wake-up. Posts and leaves happen
// under mutex_, and sleepers check their condition under it, so no notification is lost.
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
    std::exception_ptr error;
    std::mutex error_mutex;
    const std::function<void(int64_t)> task = [&](int64_t c) {
      const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
      try {
        fn(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mutex);
        if (!error) error = std::current_exception();
      }
    };
    Job job;
    job.task = &task;
    job.chunks = chunks;
    job.helpers = static_cast<int>(std::min<int64_t>(threads, chunks)) - 1;
    job.pending.store(chunks, std::memory_order_relaxed);
    post(job);
    t_in_region = true;
    work(job);
    t_in_region = false;
    finish(job);
    if (error) std::rethrow_exception(error);
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mutex_);
      stop_ = true;
      epoch_.fetch_add(1, std::memory_order_seq_cst);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void post(Job& job) {
    bool wake;
    {
      std::lock_guard<std::mutex> g(mutex_);
      jobs_.push_back(&job);
      wanted_ += job.helpers;
      const int target = std::min(wanted_, max_workers());
      while (static_cast<int>(workers_.size()) < target) workers_.emplace_back([this] { loop(); });
      epoch_.fetch_add(1, std::memory_order_seq_cst);
      wake = sleepers_ > 0;
    }
    if (wake) cv_.notify_all();
  }

  // Waits until every chunk of `job` finished and no worker is inside it, then unlists it.
  void finish(Job& job) {
    auto done = [&] {
      return job.pending.load(std::memory_order_acquire) == 0 && job.inside.load(std::memory_order_acquire) == 0;
    };
    spin_until(done, pool_spin_us());
    std::unique_lock<std::mutex> lk(mutex_);
    if (!done()) {
      ++callers_sleeping_;
      done_cv_.wait(lk, done);
      --callers_sleeping_;
    }
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
    wanted_ -= job.helpers;
  }

  // Claims and runs chunks of `job` until none is left.
  static void work(Job& job) {
    for (;;) {
      const int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= job.chunks) return;
      (*job.task)(c);
      job.pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  // A listed job that wants another worker and has an unclaimed chunk (mutex_ held), or null.
  Job* take() {
    for (Job* j : jobs_)
      if (j->joined < j->helpers && j->next.load(std::memory_order_relaxed) < j->chunks) {
        ++j->joined;
        j->inside.fetch_add(1, std::memory_order_relaxed);
        return j;
      }
    return nullptr;
  }

  void loop() {
    for (;;) {
      uint64_t seen;
      Job* job;
      {
        std::lock_guard<std::mutex> g(mutex_);
        if (stop_) return;
        seen = epoch_.load(std::memory_order_relaxed);
        job = take();
      }
      if (job) {
        t_in_region = true;
        work(*job);
        t_in_region = false;
        bool wake;
        {
          std::lock_guard<std::mutex> g(mutex_);
          job->inside.fetch_sub(1, std::memory_order_release);  // the last touch of *job
          wake = callers_sleeping_ > 0;
        }
        if (wake) done_cv_.notify_all();
        continue;
      }
      auto fresh = [&] { return epoch_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh, pool_spin_us())) {
        std::unique_lock<std::mutex> lk(mutex_);
        ++sleepers_;
        cv_.wait(lk, fresh);
        --sleepers_;
      }
    }
  }

  std::mutex mutex_;  // guards jobs_, workers_, wanted_, sleepers_, callers_sleeping_, stop_, Job::joined
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  std::vector<Job*> jobs_;
  std::atomic<uint64_t> epoch_{0};  // bumped (under mutex_) by every post and by the destructor
  int wanted_ = 0;                  // helpers the listed jobs ask for together
  int sleepers_ = 0;
  int callers_sleeping_ = 0;
  bool stop_ = false;
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
