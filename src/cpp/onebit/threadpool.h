// A persistent thread pool: workers are created once and reused by every kernel call.
// parallel_for splits [0, n) into contiguous chunks, one per thread; results never depend
// on the thread count because each index is computed by exactly one thread with the same code.
#pragma once
#include <cstdint>
#include <functional>

namespace onebit {

// Default thread count: ONEBIT_NUM_THREADS if set, else the number of online cores.
int default_num_threads();

// Runs fn(begin, end) over chunks of [0, n) using up to `threads` threads (<= 0: default).
// The calling thread takes part. Blocks until all chunks finish. Exceptions thrown by fn
// are rethrown in the caller (the first one wins).
void parallel_for(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace onebit
