// 16-lane float vector for the AVX-512 (F, BW, VL, DQ) translation units. Same interface as
// VecAvx2 (simd_avx2.h), so every kernel template runs unchanged on both.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "../core/dtype.h"

namespace infercore {
namespace {

// In-place transpose of a 16 x 16 matrix of 4-byte words (v[r] = row r): unpack 32-bit, unpack
// 64-bit, then the 128-bit lanes twice. 64 shuffles. Used by the top-k panel packing.
inline void transpose16x16_epi32(__m512i* v) {
  __m512i a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  // b[4 i + k], 128-bit lane L: rows 4 i .. 4 i + 3 of word 4 L + k
  for (int i = 0; i < 4; ++i) {
    b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    const __m512i y0 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0x44), y1 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0xEE);
    const __m512i y2 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0x44);
    const __m512i y3 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0xEE);
    v[k] = _mm512_shuffle_i32x4(y0, y2, 0x88);
    v[4 + k] = _mm512_shuffle_i32x4(y0, y2, 0xDD);
    v[8 + k] = _mm512_shuffle_i32x4(y1, y3, 0x88);
    v[12 + k] = _mm512_shuffle_i32x4(y1, y3, 0xDD);
  }
}

struct VecAvx512 {
  static constexpr int W = 16;
  static constexpr int kAlign = 64;
  using F = __m512;
  struct DAcc {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  };

  static F set1(float v) { return _mm512_set1_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F loadw(const float* p) { return _mm512_loadu_ps(p); }
  static F zero() { return _mm512_setzero_ps(); }
  static F fmadd(F a, F b, F acc) { return _mm512_fmadd_ps(a, b, acc); }
  static float fma_s(float a, float b, float acc) { return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(acc))); }
  static float hsum(F v) {  // fixed order: halves, then VecAvx2's 8-lane sequence
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }

  // dst[t * stride + r] = element t of rows[r], for W = 16 rows and t < 16 (the top-k panel
  // packing: one transpose and 16 vector stores instead of 256 scalar stores).
  static void transpose_store(const F* rows, float* dst, int64_t stride) {
    __m512i v[16];
    for (int r = 0; r < 16; ++r) v[r] = _mm512_castps_si512(rows[r]);
    transpose16x16_epi32(v);
    for (int t = 0; t < 16; ++t) _mm512_storeu_si512(dst + t * stride, v[t]);
  }
  static F load_i8(const int8_t* p) {  // 16 int8 -> float
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }

  template <DType T>
  static F load(const void* p) {
    if constexpr (T == DType::kFloat32) {
      return _mm512_loadu_ps(static_cast<const float*>(p));
    } else if constexpr (T == DType::kFloat16) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
    } else {
      __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
      return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    }
  }

  static __m256i to_bf16(F v) {
    __m512i x = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    __m512i qnan = _mm512_or_si512(_mm512_srli_epi32(x, 16), _mm512_set1_epi32(0x40));
    __mmask16 is_nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, is_nan, qnan);
    return _mm512_cvtepi32_epi16(r);  // truncates each lane to its low 16 bits
  }

  template <DType T, bool kStream>
  static void store(void* p, F v) {
    if constexpr (T == DType::kFloat32) {
      if constexpr (kStream) _mm512_stream_ps(static_cast<float*>(p), v);
      else _mm512_storeu_ps(static_cast<float*>(p), v);
    } else {
      __m256i h = T == DType::kFloat16 ? _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT) : to_bf16(v);
      if constexpr (kStream) _mm256_stream_si256(static_cast<__m256i*>(p), h);
      else _mm256_storeu_si256(static_cast<__m256i*>(p), h);
    }
  }

  static void acc_squares(DAcc& a, F v) {
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    a.lo = _mm512_fmadd_pd(lo, lo, a.lo);
    a.hi = _mm512_fmadd_pd(hi, hi, a.hi);
  }
  static double sum(const DAcc& a) { return _mm512_reduce_add_pd(_mm512_add_pd(a.lo, a.hi)); }
  static void fence() { _mm_sfence(); }
};

}  // namespace
}  // namespace infercore
