// Exact scalar conversions between float32 and the two OCP 8-bit float formats.
// E4M3FN: 1-4-3, bias 7, no infinities, S.1111.111 is NaN, largest finite 448 (0x7E).
// E5M2: 1-5-2, bias 15, IEEE-like (inf 0x7C, NaN 0x7D..0x7F), largest finite 57344 (0x7B).
// Rounding is to nearest, ties to even; subnormals are exact. `static inline` for the same ODR
// reason as dtype.h (included from translation units with different ISA flags).
//
// Overflow policy (matches torch 2.13's casts, checked bit by bit in tests/quant):
//   E4M3, either mode: anything that rounds past 448 (and +-inf) -> +-448; NaN -> 0x7F|sign.
//   E5M2, saturate=false: rounds past 57344 -> +-inf; saturate=true: finite -> +-57344,
//   +-inf stays +-inf. NaN -> 0x7F|sign.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace infercore {

template <int kMan, int kBias>
static inline uint8_t fp8_encode_t(float f, uint8_t max_code, uint8_t nan_code, uint8_t overflow_code) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return sign | nan_code;
  if (ax == 0x7F800000u) return sign | overflow_code;
  // Smallest normal of the target: 2^(1 - bias), as a float32 biased exponent.
  constexpr uint32_t kMinNormalExp = static_cast<uint32_t>(127 + 1 - kBias);
  uint32_t code;
  if ((ax >> 23) < kMinNormalExp) {
    // Subnormal range: |x| / 2^(1 - bias - man) is exact in float32 (power-of-two scale up).
    float a;
    std::memcpy(&a, &ax, 4);
    const float scaled = a * std::ldexp(1.0f, kMan + kBias - 1);
    code = static_cast<uint32_t>(std::nearbyint(scaled));  // default mode: ties to even
  } else {
    constexpr int kShift = 23 - kMan;
    uint32_t r = ax + ((1u << (kShift - 1)) - 1u) + ((ax >> kShift) & 1u);
    r >>= kShift;
    r -= static_cast<uint32_t>(127 - kBias) << kMan;  // rebias the exponent
    code = r;
  }
  if (code > max_code) return sign | overflow_code;
  return sign | static_cast<uint8_t>(code);
}

static inline uint8_t fp8_e4m3_encode(float f, bool /*saturate: same result, see above*/) {
  return fp8_encode_t<3, 7>(f, 0x7E, 0x7F, 0x7E);
}

static inline uint8_t fp8_e5m2_encode(float f, bool saturate) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (saturate && (x & 0x7FFFFFFFu) == 0x7F800000u) return static_cast<uint8_t>(((x >> 24) & 0x80u) | 0x7C);
  return fp8_encode_t<2, 15>(f, 0x7B, 0x7F, saturate ? 0x7B : 0x7C);
}

static inline float fp8_e4m3_decode(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t e = (b >> 3) & 0xFu, m = b & 0x7u;
  if (e == 0xF && m == 0x7) {
    uint32_t bits = sign | 0x7FC00000u;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  float v = e == 0 ? std::ldexp(static_cast<float>(m), -9) : std::ldexp(static_cast<float>(8 + m), static_cast<int>(e) - 10);
  return sign ? -v : v;
}

static inline float fp8_e5m2_decode(uint8_t b) {
  // E5M2 is the top byte of an IEEE binary16.
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t e = (b >> 2) & 0x1Fu, m = b & 0x3u;
  uint32_t bits;
  if (e == 0x1F) {
    bits = sign | 0x7F800000u | (m ? 0x400000u | (m << 21) : 0u);
  } else {
    float v = e == 0 ? std::ldexp(static_cast<float>(m), -16) : std::ldexp(static_cast<float>(4 + m), static_cast<int>(e) - 17);
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace infercore
