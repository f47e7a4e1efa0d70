#include "membw.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "../core/errors.h"
#include "../core/thread_pool.h"

namespace infercore {
namespace {

// SSE2-width vectors are enough to saturate DRAM; four independent accumulators hide latency.
typedef float v4f __attribute__((vector_size(16)));

float sum_range(const v4f* p, int64_t n) {
  v4f a = {0, 0, 0, 0}, b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  v4f s = a + b + c + d;
  return s[0] + s[1] + s[2] + s[3];
}

}  // namespace

std::vector<double> read_bandwidth_gbps(int64_t bytes, int repeats) {
  IC_CHECK_VALUE(bytes >= (1 << 20) && bytes <= (int64_t(64) << 30), "bytes: expected 1 MiB .. 64 GiB");
  IC_CHECK_VALUE(repeats >= 1 && repeats <= 1000, "repeats: expected 1 .. 1000");
  const int64_t n = bytes / 16;
  void* raw = nullptr;
  if (posix_memalign(&raw, 4096, static_cast<size_t>(n) * 16) != 0) fail_value("bytes: allocation failed");
  std::unique_ptr<void, void (*)(void*)> keep(raw, std::free);
  v4f* buf = static_cast<v4f*>(raw);
  const int64_t grain = int64_t(1) << 16;
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
    std::memset(static_cast<void*>(buf + lo), 1, static_cast<size_t>(hi - lo) * 16);
  });
  std::vector<double> out;
  volatile float sink = 0.f;
  for (int r = 0; r < repeats; ++r) {
    const int threads = num_threads();
    std::vector<float> partial(static_cast<size_t>(threads) * 16, 0.f);
    auto t0 = std::chrono::steady_clock::now();
    run_tasks(threads, [&](int64_t t) {
      const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
      partial[static_cast<size_t>(t) * 16] = sum_range(buf + lo, hi - lo);
    });
    auto t1 = std::chrono::steady_clock::now();
    for (float v : partial) sink = sink + v;
    const double s = std::chrono::duration<double>(t1 - t0).count();
    out.push_back(static_cast<double>(n) * 16 / s / 1e9);
  }
  (void)sink;
  return out;
}

}  // namespace infercore
