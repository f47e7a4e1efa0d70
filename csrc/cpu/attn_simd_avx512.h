// Attention primitives on top of VecAvx512 (16 lanes). Same interface as attn_simd_scalar.h.
#pragma once
#include "attention.h"
#include "simd_avx512.h"

namespace infercore {
namespace {

struct AttnAvx512 : VecAvx512 {
  // int8 / fp8 caches: float32 dots here (attn_simd_avx512vnni.h: integer, attn_simd_avx512fp16.h: float16)
  static constexpr bool kInt8Dots = false, kFp8Dots = false;
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(F a) { return _mm512_reduce_add_ps(a); }
  static void storew(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static float hmax(F a) { return _mm512_reduce_max_ps(a); }
  // e^x for x <= 0: the same evaluation as AttnAvx2::exp.
  static F exp(F x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.f));
    const F k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    F p = _mm512_set1_ps(1.f / 5040.f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 720.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    const __m512i e = _mm512_slli_epi32(_mm512_cvtps_epi32(k), 23);
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(p), e));
  }
  static __m256 fold(F a) { return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1)); }
  static void hsum4(F a, F b, F c, F d, float* out) {
    const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }

  template <KvDType T>
  static F load_kv(const void* p) {
    if constexpr (T == KvDType::kFloat32) return VecAvx512::load<DType::kFloat32>(p);
    else if constexpr (T == KvDType::kFloat16) return VecAvx512::load<DType::kFloat16>(p);
    else if constexpr (T == KvDType::kBFloat16) return VecAvx512::load<DType::kBFloat16>(p);
    else if constexpr (T == KvDType::kFp8E4m3) {  // value / 256, see AttnScalar::load_kv
      const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128(static_cast<const __m128i*>(p)));
      return _mm512_cvtph_ps(_mm256_and_si256(_mm256_slli_epi16(w, 7), _mm256_set1_epi16(static_cast<short>(0xBFFF))));
    } else {
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))));
    }
  }
};

}  // namespace
}  // namespace infercore
