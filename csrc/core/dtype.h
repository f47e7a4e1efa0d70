// Element types the kernels understand, and exact scalar conversions for the 16-bit ones.
// Functions are `static inline` on purpose: this header is included by translation units
// compiled with different ISA flags, and internal linkage keeps the linker from picking an
// AVX-512 copy for use on a CPU without it.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace infercore {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

static inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "?";
}

static inline int dtype_size(DType t) { return t == DType::kFloat32 ? 4 : 2; }

// IEEE binary16 -> float32, exact for every input (subnormals, inf, NaN payload kept).
static inline float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    do {
      man <<= 1;
      ++e;
    } while ((man & 0x400u) == 0);
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// float32 -> IEEE binary16 with round-to-nearest-even (what numpy and F16C do).
static inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) {  // inf or NaN
    return (uint16_t)(sign | 0x7C00u | (ax > 0x7F800000u ? (0x200u | ((ax >> 13) & 0x3FFu)) : 0u));
  }
  if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);  // rounds to >= 65520: overflow
  if (ax < 0x38800000u) {                                   // result subnormal or zero
    if (ax < 0x33000000u) return (uint16_t)sign;            // < 2^-25: rounds to zero
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
    uint32_t shift = 126u - e;  // 14..24
    uint32_t half_m = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t mid = 1u << (shift - 1u);
    if (rem > mid || (rem == mid && (half_m & 1u))) ++half_m;
    return (uint16_t)(sign | half_m);
  }
  uint32_t r = ax + 0xC8000FFFu + ((ax >> 13) & 1u);  // rebias exponent and round to nearest even
  return (uint16_t)(sign | (r >> 13));
}

static inline float bf16_to_float(uint16_t b) {
  uint32_t bits = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round-to-nearest-even; NaN stays a quiet NaN (same as torch and ml_dtypes).
static inline uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

}  // namespace infercore
