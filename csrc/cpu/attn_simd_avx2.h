// Attention primitives on top of VecAvx2 (8 lanes). Same interface as attn_simd_scalar.h.
#pragma once
#include "attention.h"
#include "simd_avx2.h"

namespace infercore {
namespace {

struct AttnAvx2 : VecAvx2 {
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }
  static void storew(float* p, F v) { _mm256_storeu_ps(p, v); }
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
      const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
      const __m128i mag = _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x7F)), 7);
      const __m128i sign = _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x80)), 8);
      return _mm256_cvtph_ps(_mm_or_si128(mag, sign));
    } else {
      return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i*>(p))));
    }
  }
};

}  // namespace
}  // namespace infercore
