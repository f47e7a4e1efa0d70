// AVX-512 (F/BW/VL/DQ) ops for the quantized linear kernels; interface as in
// quant_simd_scalar.h. Float work runs 16 lanes wide; the integer block dot keeps the 32-lane
// (256-bit, EVEX-encoded) sign-trick form of quant_simd_avx2.h, since a block is 32 bytes.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/dtype.h"
#include "quant16_common.h"
#include "quant_simd_r4_x86.h"
#include "quant_simd_r8_x86.h"

namespace infercore {
namespace {

struct QAvx512 : R4X86, R8X86 {
  static constexpr int W = 16;
  using F = __m512;
  using I = __m256i;
  using IAcc = __m256i;

  static float h2f(uint16_t h) { return _cvtsh_ss(h); }  // F16C, exact
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(F a) { return _mm512_reduce_add_ps(a); }

  static void dec_f32(const float* w, F* o) {
    o[0] = _mm512_loadu_ps(w);
    o[1] = _mm512_loadu_ps(w + 16);
  }
  static void dec_f16(const uint16_t* w, F* o) {
    o[0] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    o[1] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16)));
  }
  static void dec_bf16(const uint16_t* w, F* o) {
    for (int i = 0; i < 2; ++i) {
      __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 * i)));
      o[i] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
  }
  // See QAvx2::dec_fp8: E4M3 -> binary16 bits is value * 2^-8; the caller scales by 256.
  static void dec_fp8(const uint8_t* w, F* o) {
    const __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    const __m512i h = _mm512_or_si512(_mm512_slli_epi16(_mm512_and_si512(b, _mm512_set1_epi16(0x80)), 8),
                                      _mm512_slli_epi16(_mm512_and_si512(b, _mm512_set1_epi16(0x7F)), 7));
    o[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
    o[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
  }
  static I load_i8(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  // As QAvx2::load_q4 (a broadcast load, one variable shift, one and): the 128-bit halves +
  // vinserti128 form cost a port-5 shuffle per block, and the GEMV (rows4_blocks) spends port
  // 5 on its hadd trees already: 10-17% slower 4-bit GEMVs measured on a Xeon (stop 23).
  static I load_q4(const uint8_t* q) {
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
  }
  static IAcc dot_ss(I w, I x) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
  static IAcc dot_us(I w, I x) { return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)); }
  static IAcc izero() { return _mm256_setzero_si256(); }
  static IAcc iadd(IAcc a, IAcc b) { return _mm256_add_epi32(a, b); }
  static int32_t ihsum(IAcc a) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
  }
  // Block dots are 8 int32 lanes; widen to 16 float lanes with zeros on top.
  static F to_f(IAcc a) { return _mm512_insertf32x8(_mm512_setzero_ps(), _mm256_cvtepi32_ps(a), 0); }

  // int16-pair GEMM (gemm_int16_impl.h): 16 int32 lanes, each a pair of int16 (vpmaddwd).
  using P = __m512i;
  static P pzero() { return _mm512_setzero_si512(); }
  static P pload(const int16_t* p) { return _mm512_loadu_si512(p); }
  static P pbcast(const int16_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return _mm512_set1_epi32(v);
  }
  static P pmadd(P acc, P a, P b) { return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b)); }
  static void pstore(int32_t* o, P v) { _mm512_storeu_si512(o, v); }
  // Row quantization to int16 codes, bit-identical to QScalar's (see there).
  // max |x| and whether every value is finite, on the magnitude bits as integers (ordered like
  // the floats; >= 0x7F800000 is inf/NaN) in four independent max chains: the float max plus a
  // NaN-probe FMA chain before was latency-bound at ~4 cycles per vector (stop 23). The
  // returned maximum is meaningful only when *finite.
  static float absmax(const float* x, int64_t n, bool* finite) {
    const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i m0 = _mm512_setzero_si512(), m1 = m0, m2 = m0, m3 = m0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
      m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + i), mag));
      m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + i + 16), mag));
      m2 = _mm512_max_epu32(m2, _mm512_and_si512(_mm512_loadu_si512(x + i + 32), mag));
      m3 = _mm512_max_epu32(m3, _mm512_and_si512(_mm512_loadu_si512(x + i + 48), mag));
    }
    for (; i < n; i += 16) {
      const __mmask16 mk = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
      m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(mk, x + i), mag));
    }
    const uint32_t bits = _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_max_epu32(m0, m1), _mm512_max_epu32(m2, m3)));
    *finite = bits < 0x7F800000u;
    float r;
    std::memcpy(&r, &bits, sizeof(r));
    return r;
  }
  // 16 int16 codes clamp(rint(x * s), -32767, 32767) in int32 lanes (quant16; the AMX GEMM
  // splits them into hi/lo bytes in registers).
  static __m512i codes16(__m512 x, __m512 s) {
    const __m512 a = _mm512_roundscale_ps(_mm512_mul_ps(x, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_set1_ps(32767.f), _mm512_max_ps(_mm512_set1_ps(-32767.f), a)));
  }
  static void quant16(const float* x, int64_t n, float inv, int16_t* q) {
    const __m512 s = _mm512_set1_ps(inv);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm512_cvtepi32_epi16(codes16(_mm512_loadu_ps(x + i), s)));
    for (; i < n; ++i) q[i] = code16(x[i] * inv);
  }
  static int32_t quant8(const float* x, int64_t n, float d, int8_t* q) {
    const __m512 dv = _mm512_set1_ps(d), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-127.f);
    __m512i sum = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512 v = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), dv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512i c = _mm512_cvtps_epi32(_mm512_min_ps(hi, _mm512_max_ps(lo, v)));
      sum = _mm512_add_epi32(sum, c);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(c));
    }
    int32_t s = _mm512_reduce_add_epi32(sum);
    for (; i < n; ++i) s += q[i] = code8(x[i], d);
    return s;
  }
};

}  // namespace
}  // namespace infercore
