// Scalar instantiation of the norm kernels and the dispatcher that picks the ISA variant and
// splits rows over the thread pool.
#include "norm.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "simd_scalar.h"

namespace infercore {
namespace {
#include "norm_impl.h"

NormRowsFn pick(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return norm_rows_avx512;
    case IsaLevel::kAvx2: return norm_rows_avx2;
    default: return norm_rows_scalar;
  }
}

LayerNormRowsFn pick_layer(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return layer_norm_rows_avx512;
    case IsaLevel::kAvx2: return layer_norm_rows_avx2;
    default: return layer_norm_rows_scalar;
  }
}

constexpr int64_t kStreamBytes = 16ll << 20;  // outputs above this bypass the caches
}  // namespace

void layer_norm_rows_scalar(const LayerNormArgs& a, int64_t r0, int64_t r1, float* scratch) {
  layer_norm_rows<VecScalar>(a, r0, r1, scratch);
}

void layer_norm_forward(const LayerNormArgs& a) {
  IC_CHECK_VALUE(a.rows >= 0 && a.cols >= 0, "x: negative dimension");
  if (a.rows == 0 || a.cols == 0) return;
  IC_CHECK_VALUE(a.x != nullptr && a.out != nullptr && a.weight != nullptr && a.bias != nullptr,
                 "x/weight/bias/out: null data pointer");
  IC_CHECK_VALUE(std::isfinite(a.eps) && a.eps >= 0.f, "eps: expected a finite value >= 0");
  const LayerNormRowsFn fn = pick_layer(isa_level());
  const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, a.cols * 4));
  parallel_for(0, a.rows, grain, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> scratch;
    if (static_cast<int64_t>(scratch.size()) < a.cols) scratch.resize(static_cast<size_t>(a.cols));
    fn(a, r0, r1, scratch.data());
  });
}

void norm_rows_scalar(NormKind kind, const NormArgs& a, int64_t r0, int64_t r1) {
  norm_rows_dispatch<VecScalar>(kind, a, r0, r1);
}

void norm_forward(NormKind kind, const NormArgs& in) {
  IC_CHECK_VALUE(in.rows >= 0 && in.cols >= 0, "x: negative dimension");
  if (in.rows == 0 || in.cols == 0) return;
  IC_CHECK_VALUE(in.x != nullptr && in.out != nullptr, "x/out: null data pointer");
  IC_CHECK_VALUE(kind != NormKind::kRms || in.weight != nullptr, "weight: null data pointer");
  IC_CHECK_VALUE(std::isfinite(in.eps) && in.eps >= 0.f, "eps: expected a finite value >= 0");
  NormArgs a = in;
  const int64_t bytes = a.rows * a.cols * dtype_size(a.dtype);
  a.stream = bytes >= kStreamBytes;
  const NormRowsFn fn = pick(isa_level());
  // ~256 KiB of input per chunk: waking a worker costs tens of microseconds on a VM, about
  // what streaming 256 KiB takes, so smaller arrays run on the caller alone.
  const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(1, a.cols * dtype_size(a.dtype)));
  parallel_for(0, a.rows, grain, [&](int64_t r0, int64_t r1) { fn(kind, a, r0, r1); });
}

}  // namespace infercore
