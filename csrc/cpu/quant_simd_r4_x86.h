// Four-row float accumulators for the block-scaled GEMV/skinny kernel (linear_impl.h,
// rows4_blocks), shared by the AVX2 and AVX-512 ops structs (both keep 256-bit integer block
// dots). r4_dots turns the int32 partial sums of four block dots into four exact floats with one
// hadd tree: one cvt and one FMA then scale all four weight rows at once, where a per-row
// cvt + broadcast + FMA + final horizontal sum cost about three times the instructions.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace infercore {
namespace {

struct R4X86 {
  using R4 = __m128;
  static R4 r4_zero() { return _mm_setzero_ps(); }
  static R4 r4_set1(float v) { return _mm_set1_ps(v); }
  static R4 r4_halves(uint16_t a, uint16_t b, uint16_t c, uint16_t d) {  // F16C, exact
    return _mm_cvtph_ps(_mm_setr_epi16(static_cast<short>(a), static_cast<short>(b), static_cast<short>(c),
                                       static_cast<short>(d), 0, 0, 0, 0));
  }
  static R4 r4_mul(R4 a, R4 b) { return _mm_mul_ps(a, b); }
  static R4 r4_fma(R4 a, R4 b, R4 c) { return _mm_fmadd_ps(a, b, c); }
  // [sum(p0), sum(p1), sum(p2), sum(p3)] as floats; the int32 sums are exact (|block dot| < 2^20).
  static R4 r4_dots(__m256i p0, __m256i p1, __m256i p2, __m256i p3) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
  }
  static void r4_store(R4 v, float* o) { _mm_storeu_ps(o, v); }
};

}  // namespace
}  // namespace infercore
