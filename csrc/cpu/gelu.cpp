// Scalar instantiation of the GELU kernels and the dispatcher that picks the ISA variant and
// splits the flat array over the thread pool.
#include "gelu.h"

#include <algorithm>
#include <cstring>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "gelu_simd_scalar.h"

namespace infercore {
namespace {
#include "gelu_impl.h"

GeluRangeFn pick(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return gelu_range_avx512;
    case IsaLevel::kAvx2: return gelu_range_avx2;
    default: return gelu_range_scalar;
  }
}

constexpr int64_t kStreamBytes = 16ll << 20;  // out-of-place outputs above this bypass the caches
constexpr int64_t kBlock = 1024;              // chunk boundaries fall on multiples of this (alignment)
// ~32k elements per chunk at least: ~15-25 us of work on one core, about what waking a pool worker
// costs on a VM, so arrays below ~64k elements run on the caller alone.
constexpr int64_t kGrainBlocks = 32;
}  // namespace

void gelu_range_scalar(const GeluArgs& a, int64_t i0, int64_t i1) { gelu_range_dispatch<GeluScalar>(a, i0, i1); }

void gelu_forward(const GeluArgs& in) {
  IC_CHECK_VALUE(in.n >= 0, "x: negative size");
  if (in.n == 0) return;
  IC_CHECK_VALUE(in.x != nullptr && in.out != nullptr, "x/out: null data pointer");
  const int64_t esz = dtype_size(in.dtype);
  const auto xb = reinterpret_cast<uintptr_t>(in.x), ob = reinterpret_cast<uintptr_t>(in.out);
  const auto bytes = static_cast<uintptr_t>(in.n * esz);
  IC_CHECK_VALUE(xb == ob || xb + bytes <= ob || ob + bytes <= xb,
                 "out: partially overlaps x; pass x itself for in-place or a separate array");
  GeluArgs a = in;
  // In place never streams: the lines were just read into the cache, and the caller (e.g. the next
  // GEMM) usually reads the result right away.
  a.stream = xb != ob && static_cast<int64_t>(bytes) >= kStreamBytes && ob % static_cast<uintptr_t>(esz) == 0;
  const GeluRangeFn fn = pick(isa_level());
  const int64_t blocks = (a.n + kBlock - 1) / kBlock;
  parallel_for(0, blocks, kGrainBlocks, [&](int64_t b0, int64_t b1) {
    fn(a, b0 * kBlock, std::min(a.n, b1 * kBlock));
  });
}

void gelu_rows_f32(float* y, int64_t ld, int64_t rows, int64_t cols) {
  const GeluRangeFn fn = pick(isa_level());
  for (int64_t r = 0; r < rows; ++r) {
    GeluArgs a;
    a.x = a.out = y + r * ld;
    a.n = cols;
    fn(a, 0, cols);
  }
}

}  // namespace infercore
