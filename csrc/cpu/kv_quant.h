// Scalar FP8 E4M3FN and int8 helpers for the paged KV cache (quantize on write, the attention
// kernels dequantize on read). `static inline`: included by translation units with different ISA
// flags (see core/dtype.h).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace infercore {

constexpr float kFp8E4m3Max = 448.f;

// E4M3FN (1 sign, 4 exponent bits with bias 7, 3 mantissa bits, no infinities, NaN = 0x7F/0xFF)
// -> float32, exact.
static inline float fp8_e4m3_decode(uint8_t b) {
  const uint32_t e = (b >> 3) & 0xFu, m = b & 7u;
  float v;
  if ((b & 0x7Fu) == 0x7Fu) v = NAN;
  else if (e == 0) v = std::ldexp(static_cast<float>(m), -9);  // subnormal: m * 2^-9
  else v = std::ldexp(1.f + static_cast<float>(m) / 8.f, static_cast<int>(e) - 7);
  return (b & 0x80u) ? -v : v;
}

// float32 -> E4M3FN, round-to-nearest-even, saturating: |x| beyond 448 (and +-inf) -> +-448;
// NaN -> 0x7F with the sign.
static inline uint8_t fp8_e4m3_encode(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7Fu;
  float af;
  std::memcpy(&af, &a, 4);
  if (af >= kFp8E4m3Max) return sign | 0x7Eu;
  if (af < 0.015625f) {  // below 2^-6: subnormal grid of 2^-9 (m = 8 is the smallest normal, 0x08)
    const float m = std::nearbyint(af * 512.f);  // current rounding mode: nearest-even
    return sign | static_cast<uint8_t>(m);
  }
  // Round the float32 mantissa to 3 bits (nearest-even); a carry bumps the exponent.
  const uint32_t r = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;  // exponent(8) | mantissa(3)
  const uint32_t code = r - ((127u - 7u) << 3);
  return sign | static_cast<uint8_t>(code > 0x7Eu ? 0x7Eu : code);
}

// Symmetric int8 of one row: scale = absmax / 127 over the non-NaN values (1 for an all-zero
// row), q = rint(x / scale) clamped to +-127, NaN -> 0. kv_store_impl.h's AVX2 copy stores the
// same bytes and shares the two helpers.
static inline float int8_row_scale(float amax) { return amax > 0.f ? amax / 127.f : 1.f; }

static inline int8_t int8_code(float x, float inv) {
  float v = std::nearbyint(x * inv);
  v = v > 127.f ? 127.f : (v < -127.f ? -127.f : v);
  return v == v ? static_cast<int8_t>(v) : 0;  // NaN -> 0 (the cast alone would be undefined)
}

static inline float int8_quantize_row(const float* x, int64_t n, int8_t* q) {
  float amax = 0.f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float scale = int8_row_scale(amax);
  const float inv = 1.f / scale;
  for (int64_t i = 0; i < n; ++i) q[i] = int8_code(x[i], inv);
  return scale;
}

}  // namespace infercore
