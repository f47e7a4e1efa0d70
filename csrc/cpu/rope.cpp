// RoPE in place: x' = x * cos - y * sin, y' = y * cos + x * sin for each rotated pair.
// Napkin math per token: 4 * heads * head_dim / 2 flops on data already in L1 (the projection
// just wrote it): a few hundred nanoseconds, where the numpy form cost ~50 us per layer in
// fancy-indexing and temporaries. Plain loops: the compiler vectorises the neox form; pairs of
// the interleaved form are adjacent, which it handles with shuffles.
#include "rope.h"

#include <string>

#include "../core/errors.h"

namespace infercore {

void rope_forward(const RopeArgs& a, int64_t table_rows) {
  IC_CHECK_VALUE(a.rows >= 0 && a.heads >= 0 && a.head_dim > 0 && a.head_dim % 2 == 0,
                 "x: expected an even head_dim > 0, got " + std::to_string(a.head_dim));
  IC_CHECK_VALUE(a.heads * a.head_dim <= a.row_stride,
                 "heads: " + std::to_string(a.heads) + " heads of " + std::to_string(a.head_dim) +
                     " exceed the row width " + std::to_string(a.row_stride));
  for (int64_t t = 0; t < a.rows; ++t)
    IC_CHECK_VALUE(a.positions[t] >= 0 && a.positions[t] < table_rows,
                   "positions: " + std::to_string(a.positions[t]) + " is outside the table [0, " +
                       std::to_string(table_rows) + ")");
  const int64_t half = a.head_dim / 2;
  for (int64_t t = 0; t < a.rows; ++t) {
    const float* __restrict c = a.cos + a.positions[t] * half;
    const float* __restrict s = a.sin + a.positions[t] * half;
    for (int64_t h = 0; h < a.heads; ++h) {
      float* __restrict v = a.x + t * a.row_stride + h * a.head_dim;
      if (a.interleaved) {
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = v[2 * i], x1 = v[2 * i + 1];
          v[2 * i] = x0 * c[i] - x1 * s[i];
          v[2 * i + 1] = x1 * c[i] + x0 * s[i];
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const float x0 = v[i], x1 = v[i + half];
          v[i] = x0 * c[i] - x1 * s[i];
          v[i + half] = x1 * c[i] + x0 * s[i];
        }
      }
    }
  }
}

}  // namespace infercore
