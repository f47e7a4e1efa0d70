// Scalar instantiation of the silu_and_mul kernel and the dispatcher that picks the ISA variant
// and splits the work over the thread pool.
#include "silu_and_mul.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "gelu_simd_scalar.h"

namespace infercore {
namespace {
#include "vec_exp_impl.h"
#include "silu_and_mul_impl.h"

SiluMulRangeFn pick(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return silu_and_mul_range_avx512;
    case IsaLevel::kAvx2: return silu_and_mul_range_avx2;
    default: return silu_and_mul_range_scalar;
  }
}

constexpr int64_t kStreamBytes = 16ll << 20;  // outputs above this bypass the caches
// Work items are (row, column block) pairs; a column block is at most kColBlock outputs, so a
// single very long row still spreads over the pool. Chunks get at least ~32k outputs (~15 us on
// one core, about what waking a pool worker costs on a VM): decode-sized inputs (one row of
// I = 1536) run on the caller alone.
constexpr int64_t kColBlock = 16384;
constexpr int64_t kGrainOutputs = 32768;
}  // namespace

void silu_and_mul_range_scalar(const SiluMulArgs& a, int64_t r, int64_t c0, int64_t c1) {
  silu_mul_range_dispatch<GeluScalar>(a, r, c0, c1);
}

void silu_and_mul_forward(const SiluMulArgs& in) {
  IC_CHECK_VALUE(in.rows >= 0 && in.inner >= 0, "x: negative size");
  if (in.rows == 0 || in.inner == 0) return;
  IC_CHECK_VALUE(in.x != nullptr && in.out != nullptr, "x/out: null data pointer");
  const int64_t esz = dtype_size(in.dtype);
  const auto xb = reinterpret_cast<uintptr_t>(in.x), ob = reinterpret_cast<uintptr_t>(in.out);
  const auto xbytes = static_cast<uintptr_t>(in.rows * 2 * in.inner * esz);
  const auto obytes = static_cast<uintptr_t>(in.rows * in.inner * esz);
  IC_CHECK_VALUE(xb + xbytes <= ob || ob + obytes <= xb,
                 "out: overlaps x; silu_and_mul cannot run in place, pass a separate array");
  SiluMulArgs a = in;
  a.stream = static_cast<int64_t>(obytes) >= kStreamBytes && ob % static_cast<uintptr_t>(esz) == 0;
  const SiluMulRangeFn fn = pick(isa_level());
  const int64_t cblocks = (a.inner + kColBlock - 1) / kColBlock;
  const int64_t per_item = std::min(a.inner, kColBlock);
  const int64_t grain = std::max<int64_t>(1, kGrainOutputs / per_item);
  parallel_for(0, a.rows * cblocks, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r = t / cblocks, c0 = (t % cblocks) * kColBlock;
      fn(a, r, c0, std::min(a.inner, c0 + kColBlock));
    }
  });
}

}  // namespace infercore
