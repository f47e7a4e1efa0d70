// AVX2 (+FMA, F16C) ops for the quantized linear kernels; interface as in quant_simd_scalar.h.
// Integer block dots use the sign trick: maddubs(|w|, sign(x, w)) multiplies unsigned |w|
// (128 for w = -128 is right as unsigned) by x carrying w's sign; pair sums stay below
// 2*128*127 < 2^15, so the int16 step never saturates. madd with ones widens to int32.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "../core/dtype.h"
#include "quant16_common.h"
#include "quant_simd_r4_x86.h"
#include "quant_simd_r8_x86.h"

namespace infercore {
namespace {

struct QAvx2 : R4X86, R8X86 {
  static constexpr int W = 8;
  using F = __m256;
  using I = __m256i;
  using IAcc = __m256i;

  static float h2f(uint16_t h) { return _cvtsh_ss(h); }  // F16C, exact
  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(F a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static void dec_f32(const float* w, F* o) {
    for (int i = 0; i < 4; ++i) o[i] = _mm256_loadu_ps(w + 8 * i);
  }
  static void dec_f16(const uint16_t* w, F* o) {
    for (int i = 0; i < 4; ++i) o[i] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 8 * i)));
  }
  static void dec_bf16(const uint16_t* w, F* o) {
    for (int i = 0; i < 4; ++i) {
      __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 8 * i)));
      o[i] = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    }
  }
  // E4M3 byte b -> binary16 bits (b & 0x80) << 8 | (b & 0x7F) << 7 is exactly value * 2^-8,
  // subnormals included (the exponent biases differ by 8). Codes 0x7F/0xFF (NaN) never occur:
  // quantize_weight rejects non-finite weights.
  static void dec_fp8(const uint8_t* w, F* o) {
    const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i b2 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
    auto to_h = [](__m256i v) {
      return _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8),
                             _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7F)), 7));
    };
    const __m256i h = to_h(b), h2 = to_h(b2);
    o[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    o[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    o[2] = _mm256_cvtph_ps(_mm256_castsi256_si128(h2));
    o[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(h2, 1));
  }
  static I load_i8(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  // 16 bytes in both halves, the upper half shifted right by 4: low nibbles then high nibbles.
  static I load_q4(const uint8_t* q) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
  }
  static IAcc dot_ss(I w, I x) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
  static IAcc dot_us(I w, I x) {  // w unsigned 0..15: no sign trick needed
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
  }
  static IAcc izero() { return _mm256_setzero_si256(); }
  static IAcc iadd(IAcc a, IAcc b) { return _mm256_add_epi32(a, b); }
  static int32_t ihsum(IAcc a) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
  static F to_f(IAcc a) { return _mm256_cvtepi32_ps(a); }

  // int16-pair GEMM (gemm_int16_impl.h): 8 int32 lanes, each a pair of int16 as vpmaddwd reads it.
  using P = __m256i;
  static P pzero() { return _mm256_setzero_si256(); }
  static P pload(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static P pbcast(const int16_t* p) {  // a float-domain broadcast is one load uop on Zen/Intel
    return _mm256_castps_si256(_mm256_broadcast_ss(reinterpret_cast<const float*>(p)));
  }
  static P pmadd(P acc, P a, P b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
  static void pstore(int32_t* o, P v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v); }
  // Row quantization to int16 codes, bit-identical to QScalar's (see there).
  // max |x| and whether every value is finite, on the magnitude bits as integers (ordered like
  // the floats; >= 0x7F800000 is inf/NaN), four independent max chains (as QAvx512::absmax; the
  // float max + NaN-probe chain was latency-bound). The maximum is meaningful only when *finite.
  static float absmax(const float* x, int64_t n, bool* finite) {
    const __m256i mag = _mm256_set1_epi32(0x7FFFFFFF);
    __m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    auto bits_at = [&](int64_t j) {
      return _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + j)), mag);
    };
    for (; i + 32 <= n; i += 32) {
      m0 = _mm256_max_epu32(m0, bits_at(i));
      m1 = _mm256_max_epu32(m1, bits_at(i + 8));
      m2 = _mm256_max_epu32(m2, bits_at(i + 16));
      m3 = _mm256_max_epu32(m3, bits_at(i + 24));
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_epu32(m0, bits_at(i));
    alignas(32) uint32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                       _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3)));
    uint32_t bits = 0;
    for (uint32_t v : lanes) bits = std::max(bits, v);
    for (; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, x + i, sizeof(v));
      bits = std::max(bits, v & 0x7FFFFFFFu);
    }
    *finite = bits < 0x7F800000u;
    float r;
    std::memcpy(&r, &bits, sizeof(r));
    return r;
  }
  static void quant16(const float* x, int64_t n, float inv, int16_t* q) {
    const __m256 s = _mm256_set1_ps(inv), hi = _mm256_set1_ps(32767.f), lo = _mm256_set1_ps(-32767.f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m256 a = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m256 b = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      a = _mm256_min_ps(hi, _mm256_max_ps(lo, a));
      b = _mm256_min_ps(hi, _mm256_max_ps(lo, b));
      // packs interleaves 128-bit halves (a0-3 b0-3 a4-7 b4-7); the permute restores the order
      const __m256i p = _mm256_packs_epi32(_mm256_cvtps_epi32(a), _mm256_cvtps_epi32(b));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permute4x64_epi64(p, 0xD8));
    }
    for (; i < n; ++i) q[i] = code16(x[i] * inv);
  }
  static int32_t quant8(const float* x, int64_t n, float d, int8_t* q) {
    const __m256 dv = _mm256_set1_ps(d), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i sum = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
      __m256i c[4];
      for (int j = 0; j < 4; ++j) {
        __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + i + 8 * j), dv),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        c[j] = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, v)));
        sum = _mm256_add_epi32(sum, c[j]);
      }
      // packs interleave 128-bit halves: bytes come out as a0-3 b0-3 c0-3 d0-3 a4-7 ... d4-7
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permutevar8x32_epi32(p, order));
    }
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    int32_t s = _mm_cvtsi128_si32(s4);
    for (; i < n; ++i) s += q[i] = code8(x[i], d);
    return s;
  }
};

}  // namespace
}  // namespace infercore
