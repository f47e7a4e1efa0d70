// Eight-row interleaved block dots for the skinny block-kind GEMM (gemm_blocks_r8_impl.h),
// shared by the AVX2 and AVX-512 ops structs. A weight group holds 4 consecutive values of 8
// rows in each 32-bit lane (lane l = row l), so one maddubs against 4 broadcast activation bytes
// advances all 8 rows by 4 multiply-adds, with no horizontal reduction per block.
//   r8_dot: unsigned 4-bit weights (0..15) x activations in [-127, 127]: each maddubs pair is at
//   most 2*15*127 = 3810, so the 8 steps of a block (30480) add up exactly in int16.
//   r8_sum: the block's int32 dot of each row (pairs widened by madd), as 8 exact floats.
//   r8_dot_s / r8_sum32: the same for signed q8_0 weights (int32 lanes, see below).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace infercore {
namespace {

struct R8X86 {
  using R8 = __m256;
  using S8 = __m256i;  // int16 pair sums (AVX2 / AVX-512); int32 lanes with VNNI
  using G8 = __m256i;  // one interleaved weight group: 8 rows x 4 bytes
  static R8 r8_zero() { return _mm256_setzero_ps(); }
  static R8 r8_set1(float v) { return _mm256_set1_ps(v); }
  static R8 r8_load(const float* p) { return _mm256_loadu_ps(p); }
  static void r8_store(R8 v, float* p) { _mm256_storeu_ps(p, v); }
  static R8 r8_mul(R8 a, R8 b) { return _mm256_mul_ps(a, b); }
  static R8 r8_fma(R8 a, R8 b, R8 c) { return _mm256_fmadd_ps(a, b, c); }
  static R8 r8_add(R8 a, R8 b) { return _mm256_add_ps(a, b); }
  static R8 r8_halves(const uint16_t* h) {  // 8 float16 -> float32, exact (F16C)
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
  }
  static S8 s8_zero() { return _mm256_setzero_si256(); }
  static G8 g8_load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void g8_store(G8 v, uint8_t* p) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static __m256i bcast4(const int8_t* x4) {  // 4 activation bytes into every 32-bit lane
    int32_t v;
    std::memcpy(&v, x4, 4);
    return _mm256_set1_epi32(v);
  }
  static S8 r8_dot(S8 acc, G8 w, const int8_t* x4) {
    __m256i r = _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, bcast4(x4)));
    // Keeps the running sum in a register: without this GCC re-associates a block's 8 x MR
    // adds into trees over all products at once, which spills most of them to the stack.
    __asm__("" : "+x"(r));
    return r;
  }
  static R8 r8_sum(S8 acc) { return _mm256_cvtepi32_ps(_mm256_madd_epi16(acc, _mm256_set1_epi16(1))); }
  // q8_0: wa = |w| (unsigned; 128 for w = -128), ws = w. Pairs up to 2 * 128 * 127 widen to int32
  // at every step; S8 then holds int32 lanes and r8_sum32 converts them.
  static S8 r8_dot_s(S8 acc, G8 wa, G8 ws, const int8_t* x4) {
    const __m256i p = _mm256_maddubs_epi16(wa, _mm256_sign_epi8(bcast4(x4), ws));
    __m256i r = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
    __asm__("" : "+x"(r));  // as in r8_dot
    return r;
  }
  static R8 r8_sum32(S8 acc) { return _mm256_cvtepi32_ps(acc); }
  static G8 g8_abs(G8 w) { return _mm256_abs_epi8(w); }
  // rows[l] = 32 unpacked values of row l (8 lanes of 4 bytes) -> out[g] = lane g of every row
  // (an 8 x 8 transpose of 32-bit lanes).
  static void g8_transpose(const G8* r, G8* out) {
    __m256i t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
      u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
      u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
      u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int g = 0; g < 4; ++g) {
      out[g] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
      out[g + 4] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
    }
  }
};

}  // namespace
}  // namespace infercore
