// Attention on int8 KV caches with AVX-512 VNNI: q . k and p . v as exact int32 dot products
// (vpdpwssd for q . k, 32 multiply-adds per instruction; vpdpbusd for p . v, 64) instead of
// widening every cached byte to float and running FMAs.
//
// What it computes (int8 caches only; the other cache types keep the float kernel):
// - each (scaled) query row rounded to int16: q16 = rne(q * 32767 / max|q|), so a score is
//   qs * k_scale[t] * sum_d q16[d] * k8[t][d] with the sum exact in int32 (relative error of q
//   ~2^-16 of its largest element: negligible);
// - per tile of 32 keys and query row, the softmax weights p[t] * v_scale[t] rounded to uint8
//   against their largest value: p8 = rne(p * 255 / pmax), and the tile's contribution
//   pmax / 255 * sum_t p8[t] * v8[t][d] (exact in int32) joins the float accumulator.
// The uint8 weights are the error this adds (up to 1/510 of a tile's largest weight per key):
// max 0.013 against the stored values on unit-variance data, most where a few keys carry the
// output (tests/ops/test_attention.py INT8_DOTS), against ~0.02 that int8 storage itself costs
// there; end to end both together stay inside the 3e-2. (An int8 query, one vpdpbusd
// per 64 dims, ran about as fast but added more error than the weights do.) Every row is computed
// on its own with exact integer sums, so decode and a one-token prefill give the same bits.
//
// Napkin math per (key, kv head) for SmolLM2 (G = 3 query rows, D = 64): q . K is two widening
// loads and 2 G vpdpwssd plus ~2 shuffles/adds per row for the lane sums (done 16 keys at a
// time); p . V is one load, two unpacks (4 keys interleaved per int32 lane) and G vpdpbusd:
// ~25 vector instructions against ~60 for the float kernel (widen 128 bytes to float, 24 FMAs,
// horizontal sums). Measured in L2 (1 thread): ~8 against ~13 ns; the dev VM issues ~1.8 G
// 512-bit FMAs or VNNI ops per second per core.
#pragma once
#include "attn_simd_avx512.h"
#include "thread_buffer.h"

namespace infercore {
namespace {

struct AttnAvx512Vnni : AttnAvx512 {
  static constexpr bool kInt8Dots = true;

  static int64_t padded_dim(int64_t D) { return (D + 63) / 64 * 64; }

  // int16 query rows (zero-padded to whole 64-dim steps) and their scales: q16 = rne(q * qmax /
  // max|q|) with qmax = 32767, or less where a row of D int8 x int16 products could pass 2^31.
  static LowpRows prepare_rows(const float* q, int64_t rows, int64_t D) {
    const int64_t Dp = padded_dim(D);
    int16_t* q16 = thread_pack_buffer<int16_t, 7>(rows * Dp);
    float* qs = thread_pack_buffer<float, 7>(rows);
    const float qmax = static_cast<float>(std::min<int64_t>(32767, 2147483647 / (128 * D)));
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = q + r * D;
      // max |x| (NaN-proof: any NaN/inf makes the sum of x * 0 NaN)
      __m512 mx = _mm512_setzero_ps(), nan = _mm512_setzero_ps();
      for (int64_t d = 0; d < D; d += 16) {
        const __mmask16 m = D - d >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (D - d)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x + d);
        mx = _mm512_max_ps(mx, _mm512_and_ps(v, absmask));
        nan = _mm512_add_ps(nan, _mm512_mul_ps(v, _mm512_setzero_ps()));
      }
      const float amax = _mm512_reduce_max_ps(mx);
      const bool finite = _mm512_reduce_add_ps(nan) == 0.f;
      const __m512 up = _mm512_set1_ps(finite && amax > 0.f ? qmax / amax : 0.f);
      int16_t* o = q16 + r * Dp;
      for (int64_t d = 0; d < Dp; d += 16) {
        const __mmask16 m = d >= D ? 0 : D - d >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (D - d)) - 1);
        // |x * qmax / max|x|| <= qmax; cvtps rounds half to even
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + d), up));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + d), _mm512_cvtsepi32_epi16(v));
      }
      // NaN/inf in a query row: every score of the row is NaN, as in the float kernel.
      qs[r] = finite ? amax / qmax : std::numeric_limits<float>::quiet_NaN();
    }
    return LowpRows{q16, qs, Dp};
  }

  // Lane sums of 4 vectors, per 128-bit lane: lane L of the result = [a, b, c, d] summed over lane L.
  static __m512i reduce4(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  }

  // s[g][t] = qs * sum_d q16[g][d] * k8[t][d] for t in [T0, T1) (multiples of 16; every kp[t]
  // valid). Each key's row is widened to int16 once (32 dims per vector) and dotted with the NG
  // query rows (vpdpwssd: 16 lanes of pair sums), then 4 keys' lanes are summed at a time
  // (reduce4) and 16 keys' results folded into one vector. (Transposing 16 rows to 4-byte words
  // first, as the top-k panels do, measured ~20% slower: the 64 shuffles per 16 keys are the bound.)
  template <int NG>
  static void scores_lowp(const LowpRows& qi, int64_t r0, int64_t D, const char* const* kp, int T0, int T1,
                          float (*s)[kAttnTile]) {
    const int64_t rem = D % 32;
    const __mmask32 last = rem ? static_cast<__mmask32>((1ull << rem) - 1) : ~0u;
    const int16_t* q16 = qi.q + r0 * qi.Dp;
    // Four keys x NG rows of 16-lane partial sums, reduced per 128-bit lane.
    auto quad = [&](int t, __m512i* out) {
      __m512i acc[4][NG];
      for (int u = 0; u < 4; ++u)
        for (int g = 0; g < NG; ++g) acc[u][g] = _mm512_setzero_si512();
      for (int64_t j = 0; j * 32 < D; ++j) {
        const __mmask32 m = (j + 1) * 32 > D ? last : ~0u;
        for (int u = 0; u < 4; ++u) {
          // masked-off tail dims load as 0, against q16 = 0
          const __m512i k = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, kp[t + u] + j * 32));
          for (int g = 0; g < NG; ++g)
            acc[u][g] = _mm512_dpwssd_epi32(acc[u][g], k, _mm512_loadu_si512(q16 + g * qi.Dp + j * 32));
        }
      }
      for (int g = 0; g < NG; ++g) out[g] = reduce4(acc[0][g], acc[1][g], acc[2][g], acc[3][g]);
    };
    // 128-bit lanes of two quads folded into one vector as soon as both exist, so few vectors
    // stay live (NG = 4 spilled otherwise); two folds and a last shuffle give 16 keys in order.
    auto fold2 = [](__m512i v0, __m512i v1) {
      return _mm512_add_epi32(_mm512_shuffle_i32x4(v0, v1, 0x44), _mm512_shuffle_i32x4(v0, v1, 0xEE));
    };
    for (int t = T0; t < T1; t += 16) {
      __m512i a[NG], b[NG], s01[NG], s23[NG];
      quad(t, a);
      quad(t + 4, b);
      for (int g = 0; g < NG; ++g) s01[g] = fold2(a[g], b[g]);
      quad(t + 8, a);
      quad(t + 12, b);
      for (int g = 0; g < NG; ++g) s23[g] = fold2(a[g], b[g]);
      for (int g = 0; g < NG; ++g) {
        const __m512i dot = _mm512_add_epi32(_mm512_shuffle_i32x4(s01[g], s23[g], 0x88),
                                             _mm512_shuffle_i32x4(s01[g], s23[g], 0xDD));
        _mm512_storeu_ps(s[g] + t, _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(qi.qs[r0 + g])));
      }
    }
  }

  // acc_g = acc_g * alpha_g + sum_t p[g][t] * v8[t] over t in [T0, T1) (multiples of 16, p = 0
  // wherever a row sees no key, every vp[t] valid), through the uint8 weights described above.
  template <int NG>
  static void accumulate_lowp(float* acc, const float* alpha, int64_t D, const char* const* vp, int T0, int T1,
                            const float (*p)[kAttnTile]) {
    alignas(64) uint8_t p8[NG][kAttnTile];
    float deq[NG];
    bool any[NG];
    for (int g = 0; g < NG; ++g) {
      __m512 mx = _mm512_setzero_ps();
      for (int t = T0; t < T1; t += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(p[g] + t));
      const float pm = _mm512_reduce_max_ps(mx);
      any[g] = pm > 0.f;
      deq[g] = pm / 255.f;
      const __m512 up = _mm512_set1_ps(any[g] ? 255.f / pm : 0.f);
      for (int t = T0; t < T1; t += 16)
        _mm_store_si128(reinterpret_cast<__m128i*>(p8[g] + t),
                        _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(p[g] + t), up))));
    }
    for (int64_t d0 = 0; d0 < D; d0 += 64) {
      const int64_t w = std::min<int64_t>(64, D - d0);
      const __mmask64 m = w == 64 ? ~0ULL : (~0ULL >> (64 - w));
      __m512i a[NG][4];
      for (int g = 0; g < NG; ++g)
        for (int k = 0; k < 4; ++k) a[g][k] = _mm512_setzero_si512();
      for (int t = T0; t < T1; t += 4) {
        const __m512i r0 = _mm512_maskz_loadu_epi8(m, vp[t] + d0), r1 = _mm512_maskz_loadu_epi8(m, vp[t + 1] + d0);
        const __m512i r2 = _mm512_maskz_loadu_epi8(m, vp[t + 2] + d0), r3 = _mm512_maskz_loadu_epi8(m, vp[t + 3] + d0);
        // dword j of 128-bit lane L of e[k] = the 4 keys' bytes of dim 16 L + 4 k + j
        const __m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1);
        const __m512i lo23 = _mm512_unpacklo_epi8(r2, r3), hi23 = _mm512_unpackhi_epi8(r2, r3);
        const __m512i e[4] = {_mm512_unpacklo_epi16(lo01, lo23), _mm512_unpackhi_epi16(lo01, lo23),
                              _mm512_unpacklo_epi16(hi01, hi23), _mm512_unpackhi_epi16(hi01, hi23)};
        for (int g = 0; g < NG; ++g) {
          if (!any[g]) continue;
          int32_t w4;
          std::memcpy(&w4, p8[g] + t, 4);
          const __m512i pb = _mm512_set1_epi32(w4);
          for (int k = 0; k < 4; ++k) a[g][k] = _mm512_dpbusd_epi32(a[g][k], pb, e[k]);
        }
      }
      // Back to dimension order: out block L = [a0.L, a1.L, a2.L, a3.L] (a 4 x 4 transpose of lanes).
      for (int g = 0; g < NG; ++g) {
        const __m512i t0 = _mm512_shuffle_i32x4(a[g][0], a[g][1], 0x44);
        const __m512i t1 = _mm512_shuffle_i32x4(a[g][0], a[g][1], 0xEE);
        const __m512i t2 = _mm512_shuffle_i32x4(a[g][2], a[g][3], 0x44);
        const __m512i t3 = _mm512_shuffle_i32x4(a[g][2], a[g][3], 0xEE);
        const __m512i o[4] = {_mm512_shuffle_i32x4(t0, t2, 0x88), _mm512_shuffle_i32x4(t0, t2, 0xDD),
                              _mm512_shuffle_i32x4(t1, t3, 0x88), _mm512_shuffle_i32x4(t1, t3, 0xDD)};
        const __m512 al = _mm512_set1_ps(alpha[g]), dq = _mm512_set1_ps(deq[g]);
        float* dst = acc + g * D + d0;
        for (int L = 0; L < 4 && 16 * L < w; ++L) {
          const __mmask16 ml = w - 16 * L >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (w - 16 * L)) - 1);
          const __m512 old = _mm512_mul_ps(_mm512_maskz_loadu_ps(ml, dst + 16 * L), al);
          _mm512_mask_storeu_ps(dst + 16 * L, ml, _mm512_fmadd_ps(_mm512_cvtepi32_ps(o[L]), dq, old));
        }
      }
    }
  }
};

}  // namespace
}  // namespace infercore
