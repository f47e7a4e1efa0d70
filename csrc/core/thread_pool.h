// A small persistent thread pool: the caller plus (n - 1) workers split a range of tasks.
// One pool per process. If the pool is already busy (another Python thread inside a kernel,
// or a kernel calling parallel_for from a worker) the work runs serially on the caller, so
// concurrent calls are always safe. After fork() the child lazily builds a fresh pool.
#pragma once
#include <cstdint>
#include <functional>

namespace infercore {

int num_threads();
void set_num_threads(int n);  // n >= 1; throws std::invalid_argument otherwise

// Calls fn(task) for every task in [0, num_tasks), spread over the pool; returns when all
// are done. Rethrows the first exception a task threw.
void run_tasks(int64_t num_tasks, const std::function<void(int64_t)>& fn);

// Splits [begin, end) into chunks of at least `grain` items (at most a few per thread) and
// calls fn(lo, hi) for each. Ranges no larger than `grain` run inline on the caller.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

}  // namespace infercore
