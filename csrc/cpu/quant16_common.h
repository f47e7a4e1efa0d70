// Scalar pieces of the activation quantizers (int16 codes: gemm_int16_impl.h quant_rows16; int8
// codes: quant_rows8_impl.h) shared by the ops structs of every ISA level (quant_simd_<isa>.h),
// so that the vector bodies and their tails round exactly alike:
// int16 code = clamp(rint(x * inv), -32767, 32767), int8 code = clamp(rint(x / d), -127, 127).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace infercore {
namespace {

inline int16_t code16(float v) {
  return static_cast<int16_t>(std::min(32767.f, std::max(-32767.f, std::nearbyint(v))));
}

// int8 activation code of x / d (the W8A8 and block kinds): clamp(rint(x / d), -127, 127).
inline int8_t code8(float x, float d) {
  return static_cast<int8_t>(std::min(127.f, std::max(-127.f, std::nearbyint(x / d))));
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
