// A persistent thread pool: workers are created once and reused by every kernel call.
// parallel_for splits [0, n) into up to 4 contiguous chunks per thread, claimed dynamically (a
// thread that starts late still finds work); results never depend on the thread count or on
// which thread ran a chunk, because each index is computed by exactly one thread with the same
// code. Regions of different calling threads run at the same time (each caller runs its own
// chunks and idle workers join the regions that want more threads), so two models run from two
// threads never queue behind each other. Idle workers (and a caller waiting for the last chunk)
// spin for pool_spin_us() microseconds, yielding the CPU every few microseconds, before
// sleeping, so the kernels of a network run back to back without a futex wake-up (and a vCPU
// halt) between them.
#pragma once
#include <cstdint>
#include <functional>

namespace onebit {

// Default thread count: ONEBIT_NUM_THREADS if set, else the number of online cores.
int default_num_threads();

// Spin time before an idle thread sleeps: ONEBIT_SPIN_US if set (0 = sleep at once), else 100.
int pool_spin_us();

// Threads worth using for `work` units of even cost when a thread should get at least
// `min_work` of them (a fork/join costs microseconds; an op smaller than that runs on the
// calling thread alone): min(threads, work / min_work), at least 1 (threads <= 0: default).
int threads_for(int64_t work, int64_t min_work, int threads);

// The check every op's `threads` argument gets: std::invalid_argument when threads < 0
// (0 asks for the default).
void check_threads(int threads);

// Runs fn(begin, end) over chunks of [0, n) using up to `threads` threads (<= 0: default).
// The calling thread takes part. Blocks until all chunks finish. Exceptions thrown by fn
// are rethrown in the caller (the first one wins). Called from inside a chunk (nested), it runs
// fn(0, n) inline on the calling thread.
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace onebit
