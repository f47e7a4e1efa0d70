// int8 dot-product primitives for the AVX-512 translation units: 64 bytes per step, same
// interface and the same |c| * (q with c's sign) formulation as I8Avx2 (simd_i8_avx2.h).
// I8Avx512 uses AVX-512BW maddubs + madd; I8Avx512Vnni (only where the unit is compiled with
// -mavx512vnni) fuses the pair into one vpdpbusd. Both give the exact same int32 sums.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "simd_avx512.h"

namespace infercore {
namespace {

struct I8Avx512 {
  static constexpr int W = 64;
  static constexpr bool kBiased = false;  // I8Avx512Vnni: the c + 128 form of TopkKernel::dots_i8
  using I = __m512i;
  static I zero() { return _mm512_setzero_si512(); }
  static I load(const int8_t* p) { return _mm512_loadu_si512(p); }
  static I absv(I c) { return _mm512_abs_epi8(c); }
  // No vpsignb in AVX-512: negate q where c < 0 (where c == 0, |c| = 0 zeroes the product).
  static I signq(I q, I c) { return _mm512_mask_sub_epi8(q, _mm512_movepi8_mask(c), _mm512_setzero_si512(), q); }
  static I dot(I acc, I u, I s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
  }
  static int32_t hsum(I v) { return _mm512_reduce_add_epi32(v); }
};

#ifdef __AVX512VNNI__
// Also the biased form (TopkKernel::dots_i8): vpdpbusd takes the corpus bytes as unsigned c + 128
// (one xor per 64 bytes, shared by every query of the tile) and the query bytes as they are; a
// per-query constant takes the bias out. 1 dot per 64 bytes and query against 3 (abs, sign, dot)
// and the same exact sums.
struct I8Avx512Vnni : I8Avx512 {
  static constexpr bool kBiased = true;
  static I dot(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I bias() { return _mm512_set1_epi8(static_cast<char>(0x80)); }
  static I to_unsigned(I c) { return _mm512_xor_si512(c, bias()); }  // c + 128 as u8

  // ---- the packed int8 kernel (TopkKernel::pack_i8 / panel_queries_i8)
  static I bcast4(const int8_t* p) {  // 4 query bytes into every int32 lane
    int32_t x;
    std::memcpy(&x, p, 4);
    return _mm512_set1_epi32(x);
  }
  // out[j * 64 + r * 4 + b] = (byte 4 j + b of rows[r] + off) + 128 as u8, for 16 rows and j < 16:
  // a 16 x 16 transpose of 4-byte words, then the flip.
  static void pack16x64(const int8_t* const* rows, int64_t off, uint8_t* out) {
    __m512i v[16];
    for (int r = 0; r < 16; ++r) v[r] = _mm512_loadu_si512(rows[r] + off);
    transpose16x16_epi32(v);
    for (int j = 0; j < 16; ++j) _mm512_storeu_si512(out + j * 64, to_unsigned(v[j]));
  }
  // Scores of 16 rows for one query, as TopkKernel::tile computes them: float(int32(acc - bias))
  // * qm * rowmul[r] into out; returns the mask of the lanes >= thr.
  static uint32_t scores16(I acc, uint32_t bias, float qm, const float* rowmul, float thr, float* out) {
    __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, _mm512_set1_epi32(static_cast<int32_t>(bias))));
    s = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(qm)), _mm512_loadu_ps(rowmul));
    _mm512_storeu_ps(out, s);
    return _mm512_cmp_ps_mask(s, _mm512_set1_ps(thr), _CMP_GE_OQ);
  }
};
#endif

}  // namespace
}  // namespace infercore
