// int8 dot-product primitives for the AVX2 translation units: 32 bytes per step.
// u = |c| (unsigned, up to 128) times s = q with c's sign ([-127, 127]): _mm256_maddubs_epi16
// forms pairs (at most 2*128*127 = 32512, never saturating), _mm256_madd_epi16 widens to int32.
// Putting the sign on the query side is what keeps c = -128 exact.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace infercore {
namespace {

struct I8Avx2 {
  static constexpr int W = 32;
  static constexpr bool kBiased = false;  // see I8Avx512Vnni
  using I = __m256i;
  static I zero() { return _mm256_setzero_si256(); }
  static I load(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static I absv(I c) { return _mm256_abs_epi8(c); }
  static I signq(I q, I c) { return _mm256_sign_epi8(q, c); }
  static I dot(I acc, I u, I s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
  static int32_t hsum(I v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
};

}  // namespace
}  // namespace infercore
