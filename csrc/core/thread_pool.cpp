#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"

namespace infercore {
namespace {

int default_threads() {
  for (const char* var : {"INFERCORE_NUM_THREADS", "OMP_NUM_THREADS"}) {
    const char* v = std::getenv(var);
    if (v != nullptr) {
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (end != v && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
    }
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

// ~50-100 microseconds of polling before a thread blocks (pause is 65-140 cycles); short
// enough not to steal a core from other work for long.
constexpr int kSpins = 2000;

inline void cpu_relax() { __builtin_ia32_pause(); }

struct Job {
  const std::function<void(int64_t)>* fn = nullptr;
  int64_t num_tasks = 0;
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  std::exception_ptr error;

  void work() {
    for (;;) {
      int64_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= num_tasks) return;
      try {
        (*fn)(t);
      } catch (...) {
        std::lock_guard<std::mutex> g(error_mutex);
        if (!error) error = std::current_exception();
        next.store(num_tasks, std::memory_order_relaxed);  // stop handing out tasks
      }
    }
  }
};

class Pool {
 public:
  explicit Pool(int n) : wanted_(n) {}
  ~Pool() { stop_workers(); }

  int size() const { return wanted_; }

  void resize(int n) {
    std::lock_guard<std::mutex> run(run_mutex_);
    stop_workers();
    wanted_ = n;
  }

  void run(int64_t num_tasks, const std::function<void(int64_t)>& fn) {
    if (num_tasks <= 0) return;
    std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
    if (!run.owns_lock() || wanted_ == 1 || num_tasks == 1) {
      for (int64_t t = 0; t < num_tasks; ++t) fn(t);
      return;
    }
    start_workers();
    Job job;
    job.fn = &fn;
    job.num_tasks = num_tasks;
    {
      std::lock_guard<std::mutex> g(mutex_);
      job_ = &job;
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    job.work();
    for (int spin = 0; spin < kSpins && active_.load(std::memory_order_acquire) != 0; ++spin) cpu_relax();
    {
      std::unique_lock<std::mutex> g(mutex_);
      done_.wait(g, [&] { return active_.load(std::memory_order_acquire) == 0; });
      job_ = nullptr;
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void start_workers() {
    if (!workers_.empty()) return;
    stopping_ = false;
    // Workers start from the current generation so they cannot miss the job published next.
    const uint64_t gen = generation_.load();
    for (int i = 1; i < wanted_; ++i) workers_.emplace_back([this, gen] { loop(gen); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> g(mutex_);
      stopping_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void loop(uint64_t seen) {
    for (;;) {
      // Spin briefly before sleeping: kernels often come back to back (one per layer), and a
      // condition-variable wake-up costs tens of microseconds on a VM.
      for (int spin = 0; spin < kSpins && generation_.load(std::memory_order_acquire) == seen; ++spin) cpu_relax();
      Job* job;
      {
        std::unique_lock<std::mutex> g(mutex_);
        wake_.wait(g, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        if (stopping_) return;
        job = job_;
      }
      if (job != nullptr) job->work();
      {
        std::lock_guard<std::mutex> g(mutex_);
        if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_.notify_one();
      }
    }
  }

  int wanted_;
  std::mutex run_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // written under mutex_, read lock-free while spinning
  std::atomic<int> active_{0};
  bool stopping_ = false;
};

Pool* g_pool = nullptr;
std::mutex g_pool_mutex;

void forget_pool_in_child() {
  // The child has none of the parent's threads: leak the old pool (joining would hang) and
  // let the next call build a new one with the same size.
  if (g_pool != nullptr) {
    int n = g_pool->size();
    g_pool = nullptr;
    new (&g_pool_mutex) std::mutex();
    g_pool = new Pool(n);
  }
}

Pool& pool() {
  std::lock_guard<std::mutex> g(g_pool_mutex);
  if (g_pool == nullptr) {
    static bool registered = (pthread_atfork(nullptr, nullptr, forget_pool_in_child), true);
    (void)registered;
    g_pool = new Pool(default_threads());
  }
  return *g_pool;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  if (n < 1 || n > 1024) fail_value("num_threads: expected an integer in [1, 1024], got " + std::to_string(n));
  pool().resize(n);
}

void run_tasks(int64_t num_tasks, const std::function<void(int64_t)>& fn) { pool().run(num_tasks, fn); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int threads = num_threads();
  if (n <= grain || threads == 1) {
    fn(begin, end);
    return;
  }
  // A few chunks per thread balance uneven rows without much scheduling overhead.
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, static_cast<int64_t>(threads) * 4);
  const int64_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  run_tasks(chunks, [&](int64_t c) {
    const int64_t lo = begin + c * step;
    fn(lo, std::min(end, lo + step));
  });
}

}  // namespace infercore
