// GELU primitives on top of VecScalar (simd_scalar.h): the same interface as gelu_simd_avx2.h and
// gelu_simd_avx512.h, so gelu_impl.h is written once and the scalar level is its plain reference.
// min/max follow the x86 minps/maxps rule (the second operand is returned when either is NaN or
// both are zero); gelu_impl.h relies on it to carry NaN and the sign of zero.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd_scalar.h"

namespace infercore {
namespace {

struct GeluScalar : VecScalar {
  static constexpr int kAlign = 4;
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F div(F a, F b) { return a / b; }
  static F min(F a, F b) { return a < b ? a : b; }
  static F max(F a, F b) { return a > b ? a : b; }
  static F abs(F a) { return std::fabs(a); }
  static F round(F a) { return std::nearbyint(a); }  // default rounding mode: to nearest even
  // 2^k for an integer-valued k in [-126, 127] (normal range: built from the exponent bits).
  static F pow2(F k) {
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};

}  // namespace
}  // namespace infercore
