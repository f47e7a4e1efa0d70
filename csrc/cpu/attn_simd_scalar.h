// Attention primitives on top of VecScalar (simd_scalar.h): the same interface as AttnAvx2 and
// AttnAvx512, so attention_impl.h is written once and the scalar level is its plain reference.
#pragma once
#include <cmath>

#include "attention.h"
#include "simd_scalar.h"

namespace infercore {
namespace {

struct AttnScalar : VecScalar {
  // int8 / fp8 caches: float32 dots here (attn_simd_avx512vnni.h: integer, attn_simd_avx512fp16.h: float16)
  static constexpr bool kInt8Dots = false, kFp8Dots = false;
  static F zero() { return 0.f; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F fma(F a, F b, F c) { return a * b + c; }
  static float hsum(F a) { return a; }
  // out[i] = horizontal sum of the i-th vector
  static void hsum4(F a, F b, F c, F d, float* out) {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
  }
  static void storew(float* p, F v) { *p = v; }
  static F max(F a, F b) { return a > b ? a : b; }
  static float hmax(F a) { return a; }
  static F exp(F x) { return std::exp(x); }

  // A cache element as float32. fp8 E4M3 comes back divided by 256 (its bits are moved into a
  // binary16 whose exponent bias is 8 larger: exact, subnormals included); callers fold the 256
  // into the scales. NaN codes are not special-cased (the writer never produces them).
  template <KvDType T>
  static F load_kv(const void* p) {
    if constexpr (T == KvDType::kFloat32) return VecScalar::load<DType::kFloat32>(p);
    else if constexpr (T == KvDType::kFloat16) return VecScalar::load<DType::kFloat16>(p);
    else if constexpr (T == KvDType::kBFloat16) return VecScalar::load<DType::kBFloat16>(p);
    else if constexpr (T == KvDType::kFp8E4m3) {
      const uint16_t b = *static_cast<const uint8_t*>(p);
      return half_to_float(static_cast<uint16_t>(((b & 0x7Fu) << 7) | ((b & 0x80u) << 8)));
    } else {
      return static_cast<float>(*static_cast<const int8_t*>(p));
    }
  }
};

}  // namespace
}  // namespace infercore
