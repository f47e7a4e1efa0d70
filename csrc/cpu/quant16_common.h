// Scalar pieces of the int16 activation quantization (gemm_int16_impl.h quant_rows16) shared by
// the ops structs of every ISA level (quant_simd_<isa>.h), so that the vector bodies and their
// tails round exactly alike: code = clamp(rint(x * inv), -32767, 32767).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace infercore {
namespace {

inline int16_t code16(float v) {
  return static_cast<int16_t>(std::min(32767.f, std::max(-32767.f, std::nearbyint(v))));
}

// Finishes an absmax pass: reduces `lanes` per-lane maxima and NaN probes (a lane's probe is NaN
// when it saw NaN/inf), then covers x[i, n) one value at a time. Returns max |x|; *finite says
// whether every value was finite.
inline float absmax_finish(const float* lane_max, const float* lane_nan, int lanes, const float* x, int64_t i,
                           int64_t n, bool* finite) {
  float r = 0.f;
  bool ok = true;
  for (int j = 0; j < lanes; ++j) {
    r = std::max(r, lane_max[j]);
    ok = ok && !std::isnan(lane_nan[j]);
  }
  for (; i < n; ++i) {
    ok = ok && std::isfinite(x[i]);
    r = std::max(r, std::fabs(x[i]));
  }
  *finite = ok;
  return r;
}

}  // namespace
}  // namespace infercore
