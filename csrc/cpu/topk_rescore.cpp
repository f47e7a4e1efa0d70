#include "topk_rescore.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../core/dtype.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"

namespace infercore {
namespace {

// Every float16 code as a float (256 KiB, built once): one load per element instead of
// half_to_float's branches, which bounded the float16 re-ranking (the same case: 36 -> 16 ms).
const float* half_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(1 << 16);
    for (uint32_t h = 0; h < (1u << 16); ++h) t[h] = half_to_float(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

// Row r's element j as a double (float16 and float32 values are exact in double, and so is the
// product of two of them: the sums below round only when they add).
inline double elem(const RescoreArgs& a, const float* half, int64_t r, int64_t j) {
  if (a.rows_f16) return half[static_cast<const uint16_t*>(a.rows)[r * a.d + j]];
  return static_cast<const float*>(a.rows)[r * a.d + j];
}

}  // namespace

void topk_rescore(const RescoreArgs& a) {
  IC_CHECK_VALUE(a.Q >= 0 && a.N >= 0 && a.m >= 0, "cand: negative dimension");
  IC_CHECK_VALUE(a.d >= 1, "refine: the row length d must be >= 1");
  IC_CHECK_VALUE(a.k >= 1, "k: expected >= 1, got " + std::to_string(a.k));
  for (int64_t i = 0; i < a.Q * a.m; ++i)
    IC_CHECK_VALUE(a.cand[i] >= -1 && a.cand[i] < a.N, "cand: id " + std::to_string(a.cand[i]) +
                                                            " out of range [-1, " + std::to_string(a.N) + ")");
  // Napkin math: Q x m rows of d elements, each read once from wherever the ids point (random
  // rows: ~m cache misses per query); 2 flops per element. Q = 256, m = 400, d = 384: 79 M
  // multiply-adds in double and ~80 MB of float16 rows from random places: 16 ms on 2 threads,
  // against 57 ms for the per-query numpy loop this replaces (which also held the GIL).
  const int64_t row_bytes = a.d * (a.rows_f16 ? 2 : 4);
  const float* half = a.rows_f16 ? half_table() : nullptr;
  constexpr int64_t kAhead = 4;
  parallel_for(0, a.Q, 4, [&](int64_t lo, int64_t hi) {
    std::vector<std::pair<double, int64_t>> sc;
    for (int64_t q = lo; q < hi; ++q) {
      const float* qp = a.queries + q * a.d;
      double qq = 0.0;
      if (a.cosine)
        for (int64_t j = 0; j < a.d; ++j) qq += static_cast<double>(qp[j]) * qp[j];
      sc.clear();
      const int64_t* cq = a.cand + q * a.m;
      for (int64_t i = 0; i < a.m; ++i) {
        // The ids point anywhere in the rows: ask for the row kAhead candidates on while this
        // one is summed (Q = 256 x 400 rows of 1M x 384 float16, 2 threads: 60 -> 36 ms).
        if (i + kAhead < a.m && cq[i + kAhead] >= 0) {
          const char* p = static_cast<const char*>(a.rows) + cq[i + kAhead] * row_bytes;
          for (int64_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(p + b);
        }
        const int64_t id = cq[i];
        if (id < 0) continue;
        // Four partial sums (j mod 4, added as (0 + 1) + (2 + 3)): one chain would wait on the
        // add latency every element.
        double p[4] = {0.0, 0.0, 0.0, 0.0}, rq[4] = {0.0, 0.0, 0.0, 0.0};
        for (int64_t j = 0; j < a.d; ++j) {
          const double x = elem(a, half, id, j);
          p[j & 3] += x * qp[j];
          if (a.cosine) rq[j & 3] += x * x;
        }
        double dot = (p[0] + p[1]) + (p[2] + p[3]);
        const double rr = (rq[0] + rq[1]) + (rq[2] + rq[3]);
        if (std::isnan(dot)) continue;  // a row (or query) with NaN: never a result
        if (a.cosine) {
          const double n = std::sqrt(rr) * std::sqrt(qq);
          dot = n > 0.0 ? dot / n : 0.0;
        }
        sc.emplace_back(dot, id);
      }
      const int64_t keep = std::min<int64_t>(a.k, static_cast<int64_t>(sc.size()));
      auto better = [](const std::pair<double, int64_t>& x, const std::pair<double, int64_t>& y) {
        return x.first > y.first || (x.first == y.first && x.second < y.second);
      };
      std::partial_sort(sc.begin(), sc.begin() + keep, sc.end(), better);
      float* os = a.out_scores + q * a.k;
      int64_t* oi = a.out_ids + q * a.k;
      for (int64_t i = 0; i < a.k; ++i) {
        os[i] = i < keep ? static_cast<float>(sc[i].first) : -std::numeric_limits<float>::infinity();
        oi[i] = i < keep ? sc[i].second : -1;
      }
    }
  });
}

}  // namespace infercore
