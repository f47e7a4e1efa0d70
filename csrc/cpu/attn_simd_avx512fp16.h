// Attention on fp8 (E4M3) KV caches with AVX512-FP16: every cached byte widens exactly to
// float16 (value / 256: three integer ops per 32 values, no float conversion) and q . k and p . v
// run as float16 FMAs on 32 lanes (vfmadd231ph), where the float kernel widens to float32 and
// runs 16-lane FMAs. Same interface as AttnAvx512 for the other cache types (it derives from it).
//
// What it computes (fp8 caches only):
// - each (scaled) query row times a power of two 2^e that brings its largest element into
//   [1/2, 1], rounded to float16 (RNE, relative 2^-11), so q . k never leaves float16's range
//   (|k| <= 1.875 after the 1/256): products in float16, summed in float16 per 32-dim lane and
//   over 4 keys, then in float32; the score is that sum times 2^-e;
// - per tile of 32 keys and query row, the softmax weights (<= 1) rounded to float16 and
//   p . v summed in float16 over the tile (<= 32 x 1.875), then added to the float32 accumulator.
// float16 rounding (2^-11) is far below fp8's own (2^-4): against the stored values the outputs
// move by up to ~3e-3 on unit-variance data (tests/ops/test_attention.py FP8_DOTS), 1-2% of what
// storing in fp8 costs there. Rows are computed on their own in a fixed order, so decode and a
// one-token prefill give the same bits.
//
// Napkin math per (key, kv head) for SmolLM2 (G = 3 query rows, D = 64), in ops on the FMA
// port (the bound: the dev VM issues ~1.8 G 512-bit FMAs per second per core): q . K 2 G
// half-precision FMAs + ~1.3 G for the lane sums + ~3 for the widening; p . V 2 G FMAs + ~3:
// ~26 against ~43 for the float kernel (fp8 -> float32 conversions, 24 single-precision FMAs,
// horizontal sums). Measured in L2, 1 thread: ~9 against ~14 ns (float kernel on fp8; float16
// caches ~12).
#pragma once
#include "attn_simd_avx512.h"
#include "thread_buffer.h"

namespace infercore {
namespace {

struct AttnAvx512Fp16 : AttnAvx512 {
  static constexpr bool kFp8Dots = true;

  static int64_t padded_dim(int64_t D) { return (D + 63) / 64 * 64; }

  // 32 fp8 codes -> float16 bits of value / 256: sign-extend each byte to 16 bits, shift the
  // exponent and mantissa into place, clear bit 14 (where the sign landed); the extended sign is
  // bit 15. Exact, subnormals included (0x7F, NaN in E4M3FN, reads 480 as in the float kernel).
  static __m512h widen(__m256i codes) {
    const __m512i w = _mm512_slli_epi16(_mm512_cvtepi8_epi16(codes), 7);
    return _mm512_castsi512_ph(_mm512_and_si512(w, _mm512_set1_epi16(static_cast<short>(0xBFFF))));
  }

  // float16 query rows (zero-padded to whole 64-dim steps) scaled by 2^e, and 2^-e per row.
  static LowpRows prepare_rows(const float* q, int64_t rows, int64_t D) {
    const int64_t Dp = padded_dim(D);
    int16_t* qh = thread_pack_buffer<int16_t, 9>(rows * Dp);
    float* qs = thread_pack_buffer<float, 9>(rows);
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = q + r * D;
      __m512 mx = _mm512_setzero_ps(), nan = _mm512_setzero_ps();
      for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 m = D - d >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (D - d)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + d);
        mx = _mm512_max_ps(mx, _mm512_and_ps(v, absmask));
        nan = _mm512_add_ps(nan, _mm512_mul_ps(v, _mm512_setzero_ps()));  // NaN/inf -> NaN
      }
      const float amax = _mm512_reduce_max_ps(mx);
      const bool finite = _mm512_reduce_add_ps(nan) == 0.f;
      int e = 0;
      if (finite && amax > 0.f) std::frexp(amax, &e);  // amax = f * 2^e, f in [1/2, 1)
      const __m512 up = _mm512_set1_ps(finite ? std::ldexp(1.f, -e) : 0.f);
      int16_t* o = qh + r * Dp;
      for (int64_t d = 0; d < Dp; d += 16) {
        const __mmask16 m = d >= D ? 0 : D - d >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (D - d)) - 1);
        const __m256i h = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + d), up),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + d), h);
      }
      qs[r] = finite ? std::ldexp(1.f, e) : std::numeric_limits<float>::quiet_NaN();
    }
    return LowpRows{qh, qs, Dp};
  }

  // s[g][t] = 2^-e * q_g . k_t for t in [T0, T1) (multiples of 16; every kp[t] valid).
  template <int NG>
  static void scores_lowp(const LowpRows& qi, int64_t r0, int64_t D, const char* const* kp, int T0, int T1,
                          float (*s)[kAttnTile]) {
    const int64_t rem = D % 32;
    const __mmask32 last = rem ? static_cast<__mmask32>((1ull << rem) - 1) : ~0u;
    const int16_t* qh = qi.q + r0 * qi.Dp;
    // Four keys x NG rows: 32 float16 lanes of products each, summed down to 4 groups of the
    // 4 keys' float32 partials per vector (lane L = [k0, k1, k2, k3] over some dims).
    auto quad = [&](int t, __m512* out) {
      __m512h acc[4][NG];
      for (int u = 0; u < 4; ++u)
        for (int g = 0; g < NG; ++g) acc[u][g] = _mm512_setzero_ph();
      for (int64_t j = 0; j < D; j += 32) {
        const __mmask32 m = j + 32 > D ? last : ~0u;
        for (int u = 0; u < 4; ++u) {
          const __m512h k = widen(_mm256_maskz_loadu_epi8(m, kp[t + u] + j));  // tail codes 0 -> +0
          for (int g = 0; g < NG; ++g)
            acc[u][g] = _mm512_fmadd_ph(k, _mm512_castsi512_ph(_mm512_loadu_si512(qh + g * qi.Dp + j)), acc[u][g]);
        }
      }
      for (int g = 0; g < NG; ++g) {
        const __m512i a = _mm512_castph_si512(acc[0][g]), b = _mm512_castph_si512(acc[1][g]);
        const __m512i c = _mm512_castph_si512(acc[2][g]), d = _mm512_castph_si512(acc[3][g]);
        const __m512h ab = _mm512_add_ph(_mm512_castsi512_ph(_mm512_unpacklo_epi16(a, b)),
                                         _mm512_castsi512_ph(_mm512_unpackhi_epi16(a, b)));
        const __m512h cd = _mm512_add_ph(_mm512_castsi512_ph(_mm512_unpacklo_epi16(c, d)),
                                         _mm512_castsi512_ph(_mm512_unpackhi_epi16(c, d)));
        const __m512i abi = _mm512_castph_si512(ab), cdi = _mm512_castph_si512(cd);
        // per 128-bit lane: [a b c d a b c d] (two partials of each key)
        const __m512h abcd = _mm512_add_ph(_mm512_castsi512_ph(_mm512_unpacklo_epi32(abi, cdi)),
                                           _mm512_castsi512_ph(_mm512_unpackhi_epi32(abi, cdi)));
        const __m512i h = _mm512_castph_si512(abcd);
        out[g] = _mm512_add_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)),
                               _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)));
      }
    };
    // out[g] lanes: 128-bit lane L of the float32 vector = [k0 k1 k2 k3] partial sums; fold as
    // in the int8 kernel: two quads' lanes per vector, then 16 keys in order. (Sharing this fold
    // and the query-row scan with the int8 kernel through one header measured ~7% slower on int8,
    // with or without the fold template, in three A/B rounds: kept apart.)
    auto fold2 = [](__m512 v0, __m512 v1) {
      return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xEE));
    };
    for (int t = T0; t < T1; t += 16) {
      __m512 a[NG], b[NG], s01[NG], s23[NG];
      quad(t, a);
      quad(t + 4, b);
      for (int g = 0; g < NG; ++g) s01[g] = fold2(a[g], b[g]);
      quad(t + 8, a);
      quad(t + 12, b);
      for (int g = 0; g < NG; ++g) s23[g] = fold2(a[g], b[g]);
      for (int g = 0; g < NG; ++g) {
        const __m512 tot = _mm512_add_ps(_mm512_shuffle_f32x4(s01[g], s23[g], 0x88),
                                         _mm512_shuffle_f32x4(s01[g], s23[g], 0xDD));
        _mm512_storeu_ps(s[g] + t, _mm512_mul_ps(tot, _mm512_set1_ps(qi.qs[r0 + g])));
      }
    }
  }

  // acc_g = acc_g * alpha_g + sum_t p[g][t] * v_t over t in [T0, T1) (multiples of 16, p = 0
  // wherever a row sees no key, every vp[t] valid): float16 weights and sums over the tile.
  template <int NG>
  static void accumulate_lowp(float* acc, const float* alpha, int64_t D, const char* const* vp, int T0, int T1,
                              const float (*p)[kAttnTile]) {
    alignas(64) _Float16 ph[NG][kAttnTile];
    for (int g = 0; g < NG; ++g)
      for (int t = T0; t < T1; t += 16)
        _mm256_store_si256(reinterpret_cast<__m256i*>(ph[g] + t),
                           _mm512_cvtps_ph(_mm512_loadu_ps(p[g] + t), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
      const int64_t w = std::min<int64_t>(64, D - d0);
      const __mmask32 m0 = w >= 32 ? ~0u : static_cast<__mmask32>((1ull << w) - 1);
      const __mmask32 m1 = w >= 64 ? ~0u : w > 32 ? static_cast<__mmask32>((1ull << (w - 32)) - 1) : 0u;
      __m512h a[NG][2];
      for (int g = 0; g < NG; ++g) a[g][0] = a[g][1] = _mm512_setzero_ph();
      for (int t = T0; t < T1; ++t) {
        const __m512h v0 = widen(_mm256_maskz_loadu_epi8(m0, vp[t] + d0));
        const __m512h v1 = widen(_mm256_maskz_loadu_epi8(m1, vp[t] + d0 + 32));
        for (int g = 0; g < NG; ++g) {
          const __m512h pb = _mm512_set1_ph(ph[g][t]);
          a[g][0] = _mm512_fmadd_ph(pb, v0, a[g][0]);
          a[g][1] = _mm512_fmadd_ph(pb, v1, a[g][1]);
        }
      }
      for (int g = 0; g < NG; ++g) {
        const __m512 al = _mm512_set1_ps(alpha[g]);
        float* dst = acc + g * D + d0;
        for (int half = 0; half < 2; ++half) {
          const __m512i h = _mm512_castph_si512(a[g][half]);
          const __m512 o[2] = {_mm512_cvtph_ps(_mm512_castsi512_si256(h)),
                               _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1))};
          for (int L = 0; L < 2; ++L) {
            const int64_t off = 32 * half + 16 * L;
            if (off >= w) break;
            const __mmask16 ml = w - off >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (w - off)) - 1);
            _mm512_mask_storeu_ps(dst + off, ml, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(ml, dst + off), al, o[L]));
          }
        }
      }
    }
  }
};

}  // namespace
}  // namespace infercore
