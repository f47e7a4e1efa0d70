// Attention primitives on top of VecAvx2 (8 lanes). Same interface as attn_simd_scalar.h.
#pragma once
#include "attention.h"
#include "simd_avx2.h"

namespace infercore {
namespace {

struct AttnAvx2 : VecAvx2 {
  // int8 / fp8 caches: float32 dots here (attn_simd_avx512vnni.h: integer, attn_simd_avx512fp16.h: float16)
  static constexpr bool kInt8Dots = false, kFp8Dots = false;
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static void storew(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static float hmax(F a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  // e^x for x <= 0 (softmax arguments after subtracting the max), relative error ~2e-7:
  // x = k ln2 + r (Cody-Waite split of ln2), e^r by its Taylor series to degree 7, 2^k by
  // adding k to the exponent bits. Inputs below -87 are clamped (their weight is 0 anyway).
  static F exp(F x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
    const F k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    F p = _mm256_set1_ps(1.f / 5040.f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(k), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
  }
  // Four horizontal sums at once: 6 instructions instead of 4 x 7.
  static void hsum4(F a, F b, F c, F d, float* out) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));  // per 128-bit half
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }

  template <KvDType T>
  static F load_kv(const void* p) {
    if constexpr (T == KvDType::kFloat32) return VecAvx2::load<DType::kFloat32>(p);
    else if constexpr (T == KvDType::kFloat16) return VecAvx2::load<DType::kFloat16>(p);
    else if constexpr (T == KvDType::kBFloat16) return VecAvx2::load<DType::kBFloat16>(p);
    else if constexpr (T == KvDType::kFp8E4m3) {  // value / 256, see AttnScalar::load_kv
      // Sign-extend, shift by 7: bit 15 = sign, bits 13..7 = exponent|mantissa, and bit 14 a
      // copy of the sign that the mask clears.
      const __m128i w = _mm_cvtepi8_epi16(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
      return _mm256_cvtph_ps(_mm_and_si128(_mm_slli_epi16(w, 7), _mm_set1_epi16(static_cast<short>(0xBFFF))));
    } else {
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))));
    }
  }
};

}  // namespace
}  // namespace infercore
