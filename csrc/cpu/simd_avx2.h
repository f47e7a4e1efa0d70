// 8-lane float vector for the AVX2 (+FMA, F16C) translation units. Only included from files
// compiled with -mavx2 -mfma -mf16c; kernels are templates over this type and over
// simd_avx512.h's, so the logic is written once and tested at every level the machine has.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "../core/dtype.h"

namespace infercore {
namespace {

struct VecAvx2 {
  static constexpr int W = 8;
  static constexpr int kAlign = 32;  // bytes, for streaming stores of float32
  using F = __m256;
  struct DAcc {  // two 4-lane double accumulators
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  };

  static F set1(float v) { return _mm256_set1_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F loadw(const float* p) { return _mm256_loadu_ps(p); }
  static F zero() { return _mm256_setzero_ps(); }
  static F fmadd(F a, F b, F acc) { return _mm256_fmadd_ps(a, b, acc); }
  static float fma_s(float a, float b, float acc) { return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(acc))); }
  static float hsum(F v) {  // fixed order: halves, then pairs
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }

  // dst[t * stride + r] = element t of rows[r], for W = 8 rows and t < 8 (the top-k panel
  // packing, as VecAvx512::transpose_store): unpack, shuffle, then 128-bit halves.
  static void transpose_store(const F* v, float* dst, int64_t stride) {
    F a[8], b[8];
    for (int i = 0; i < 4; ++i) {
      a[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
      a[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    // b[4 i + k], 128-bit half L: rows 4 i .. 4 i + 3 of element 4 L + k
    for (int i = 0; i < 2; ++i) {
      b[4 * i] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0x44);
      b[4 * i + 1] = _mm256_shuffle_ps(a[4 * i], a[4 * i + 2], 0xEE);
      b[4 * i + 2] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0x44);
      b[4 * i + 3] = _mm256_shuffle_ps(a[4 * i + 1], a[4 * i + 3], 0xEE);
    }
    for (int k = 0; k < 4; ++k) {
      _mm256_storeu_ps(dst + k * stride, _mm256_permute2f128_ps(b[k], b[4 + k], 0x20));
      _mm256_storeu_ps(dst + (4 + k) * stride, _mm256_permute2f128_ps(b[k], b[4 + k], 0x31));
    }
  }
  static F load_i8(const int8_t* p) {  // 8 int8 -> float
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }

  template <DType T>
  static F load(const void* p) {
    if constexpr (T == DType::kFloat32) {
      return _mm256_loadu_ps(static_cast<const float*>(p));
    } else if constexpr (T == DType::kFloat16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    } else {
      __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }
  }

  // float32 -> bf16 with round-to-nearest-even, NaN -> quiet NaN; 8 results in an __m128i.
  static __m128i to_bf16(F v) {
    __m256i x = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    __m256i qnan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, qnan, is_nan);
    r = _mm256_and_si256(r, _mm256_set1_epi32(0xFFFF));
    __m256i packed = _mm256_packus_epi32(r, r);  // per 128-bit lane: [a0..a3 a0..a3 | b0..b3 b0..b3]
    packed = _mm256_permute4x64_epi64(packed, 0x08);
    return _mm256_castsi256_si128(packed);
  }

  template <DType T, bool kStream>
  static void store(void* p, F v) {
    if constexpr (T == DType::kFloat32) {
      if constexpr (kStream) _mm256_stream_ps(static_cast<float*>(p), v);
      else _mm256_storeu_ps(static_cast<float*>(p), v);
    } else {
      __m128i h = T == DType::kFloat16 ? _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT) : to_bf16(v);
      if constexpr (kStream) _mm_stream_si128(static_cast<__m128i*>(p), h);
      else _mm_storeu_si128(static_cast<__m128i*>(p), h);
    }
  }

  static void acc_squares(DAcc& a, F v) {
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    a.lo = _mm256_fmadd_pd(lo, lo, a.lo);
    a.hi = _mm256_fmadd_pd(hi, hi, a.hi);
  }
  static double sum(const DAcc& a) {
    __m256d s = _mm256_add_pd(a.lo, a.hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
  }
  static void fence() { _mm_sfence(); }
};

}  // namespace
}  // namespace infercore
