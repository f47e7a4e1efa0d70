// The int8-weight GEMM (gemm_int16_impl.h: W8A16, int16 activation codes) on AMX int8 tiles
// (Sapphire Rapids and later), with bit-identical results.
//
// AMX multiplies int8 by int8 only, so each int16 code is split exactly: q = 256 * hi + lo with
// hi = q >> 8 (signed, -128..127) and lo = q & 255 (unsigned). Over the whole of K, one pass of
// tdpbssd (hi x w) and one of tdpbusd (lo x w) give two exact int32 sums (|hi w| <= 16256 and
// |lo w| <= 32385 per K value: exact up to K = 65536, checked by the driver), and
// S = 256 * sum_hi + sum_lo (int64) is the exact integer dot product the vpmaddwd kernel also
// computes. The epilogue is the same out = fma(float(S), d * s_w, bias), so every output equals
// the AVX2/AVX-512 kernels' bit for bit.
//
// Tiles (palette 1, all 16 rows x 64 bytes): C0..C3 = tmm0-3 (a 32 x 32 int32 output tile as
// 2 x 2 tiles), A = tmm4-5 (16 activation rows x 64 K bytes each), B = tmm6-7 (16 K quads x
// 16 weight rows x 4 bytes, the VNNI layout). amx_prepare stores both operands as contiguous
// 1 KiB tiles, so every tile load is one 1 KiB stream. Per 64 K values a 32 x 32 tile takes
// 4 tile loads and 4 tdp* per pass; the sums are read out once per output tile (a tile store
// followed by vector loads costs ~2000 cycles: per 256-K block, as a first version did, that
// took most of the time).
// Precision "high" (LinearArgs::high) runs W8A8 instead: int8 codes per row exactly as the
// dot-product tiles quantize below kGemmMinRowsQuant rows (quant_rows8), in hi's tile layout,
// one tdpbssd pass, o = float(S) * (dx * s_w) + bias with the tiles' two roundings: every row
// gets the same bits at any batch size.
// Napkin (embedder FFN, M 4032, N 1536, K 384): 2 passes x 2.4 G int8 MACs at ~2.6 T int8
// MACs/s per core with L1-resident tiles (measured) -> ~0.9 ms on 2 cores, against ~13 ms for
// the vpdpwssd kernel.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "amx_tiles.h"
#include "gelu.h"
#include "gelu_simd_avx512.h"
#include "linear.h"
#include "quant_simd_avx512.h"
#include "thread_buffer.h"

namespace infercore {
namespace {

constexpr int64_t kStep = 64;      // K bytes per A tile row / 4 x 16 per B tile
constexpr int64_t kTileBytes = 1024;

#include "gelu_impl.h"  // gelu_v: the fused GELU epilogue, the same vector code as ops.gelu

// Steps [s0, s1) of a pass over K for a 32 x 32 output tile, on the accumulators tmm0-3 (a
// caller can put other work between the halves of a pass): A (rows 0-15 from the strip at a,
// rows 16-31 from the next strip, `tiles` bytes on) x B (16-row groups b0, b1), all 1 KiB tiles;
// signed A codes (hi, W8A8: tdpbssd) or unsigned (lo: tdpbusd).
template <bool kUnsignedA>
inline void tile_steps(const int8_t* b0, const int8_t* b1, const void* a, int64_t tiles, int64_t s0, int64_t s1) {
  const int8_t* a0 = static_cast<const int8_t*>(a);
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t at = s * kTileBytes;
    _tile_loadd(6, b0 + at, 64);
    _tile_loadd(7, b1 + at, 64);
    _tile_loadd(4, a0 + at, 64);
    _tile_loadd(5, a0 + tiles + at, 64);
    if constexpr (kUnsignedA) {
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    } else {
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  }
}

inline void zero_sums() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

inline void store_sums(int32_t* sums) {
  _tile_stored(0, sums, 128);
  _tile_stored(1, sums + 16, 128);
  _tile_stored(2, sums + 16 * 32, 128);
  _tile_stored(3, sums + 16 * 32 + 16, 128);
}

}  // namespace

bool amx_int8_usable() {
  static const bool usable = [] {
    return !amx_disabled_by_env() && cpu_features().amx && cpu_features().avx512 && request_tile_permission();
  }();
  return usable;
}

AmxOperands amx_prepare(const LinearArgs& a) {
  AmxOperands op;
  op.kp64 = (a.K + kStep - 1) / kStep * kStep;
  op.mpad = (a.M + 31) / 32 * 32;
  const int64_t npad = (a.N + 31) / 32 * 32, groups = npad / 16, steps = op.kp64 / kStep;
  // Weights: per group of 16 rows and 64 K values one 1 KiB B tile, [quad][row][4], zero past N and K.
  int8_t* w = thread_pack_buffer<int8_t, 0>(groups * steps * kTileBytes);
  const int8_t* src = static_cast<const int8_t*>(a.w);
  // Tile row q of step s holds quad q (K values s * 64 + 4q .. + 3) of the 16 weight rows: one
  // 16-lane gather of 4-byte quads, rows K bytes apart (a memcpy per quad took ~30% of an
  // M = 512 W8A8 call). The quad that crosses K is copied byte-wise (no read past a row).
  const __m512i row_offsets = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                 _mm512_set1_epi32(static_cast<int>(a.K)));
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      int8_t* dst = w + g * steps * kTileBytes;
      const int64_t rows = std::min<int64_t>(16, a.N - g * 16);
      const __mmask16 live = rows >= 16 ? __mmask16(0xFFFF) : rows <= 0 ? __mmask16(0) : __mmask16((1u << rows) - 1);
      const int8_t* base = src + g * 16 * a.K;
      for (int64_t k = 0; k < op.kp64; k += 4) {
        int8_t* t = dst + (k / kStep) * kTileBytes + (k % kStep) / 4 * 64;
        if (k + 4 <= a.K) {
          _mm512_storeu_si512(t, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, row_offsets, base + k, 1));
          continue;
        }
        std::memset(t, 0, 64);
        for (int64_t c = 0; c < rows && k < a.K; ++c)
          std::memcpy(t + c * 4, base + c * a.K + k, static_cast<size_t>(a.K - k));
      }
    }
  });
  float* d = thread_pack_buffer<float>(op.mpad);
  if (a.high) {
    // precision "high": int8 codes per row (W8A8), exactly quant_rows8's (the codes of the
    // dot-product tiles below kGemmMinRowsQuant rows), laid out as 1 KiB tiles like hi/lo (a
    // row-major layout with strided tile loads ran ~1.3x slower), zero padded
    int8_t* q8 = thread_pack_buffer<int8_t, 2>(op.mpad * op.kp64);
    parallel_for(0, op.mpad, std::max<int64_t>(1, 16384 / op.kp64), [&](int64_t r0, int64_t r1) {
      int8_t* row = thread_pack_buffer<int8_t, 3>(op.kp64);  // one row's codes, then scattered
      float* tmp = a.act_scale != nullptr ? thread_pack_buffer<float, 1>(a.K) : nullptr;  // x * act_scale
      for (int64_t m = r0; m < r1; ++m) {
        if (m < a.M) {
          quant_rows8_avx512(act_row(a, m, tmp), a.K, op.kp64, true, 0, 1, row, d + m, nullptr);
        } else {
          std::memset(row, 0, static_cast<size_t>(op.kp64));
          d[m] = 0.0f;
        }
        for (int64_t st = 0; st < steps; ++st)
          std::memcpy(q8 + ((m / 16) * steps + st) * kTileBytes + (m % 16) * kStep, row + st * kStep, kStep);
      }
    });
    op.q8 = q8;
    op.a8 = true;
    op.d = d;
    op.w = w;
    return op;
  }
  // Activation codes straight from x (no int16 array): per row d = absmax / 32767 and
  // q = clamp(rint(x * (1 / d))) as quant_rows16 (QAvx512::absmax / codes16), split as
  // q = 256 * hi + lo in [m / 16][k / 64] tiles of [16 rows][64 bytes] (row m's step s at
  // ((m / 16) * steps + s) * 1 KiB + (m % 16) * 64); rows past M and values past K are zero.
  int8_t* hi = thread_pack_buffer<int8_t, 1>(op.mpad * op.kp64);
  uint8_t* lo = thread_pack_buffer<uint8_t>(op.mpad * op.kp64);
  parallel_for(0, op.mpad, std::max<int64_t>(1, 16384 / op.kp64), [&](int64_t r0, int64_t r1) {
    float* tmp = a.act_scale != nullptr ? thread_pack_buffer<float, 1>(a.K) : nullptr;
    for (int64_t m = r0; m < r1; ++m) {
      const float* x = m < a.M ? act_row(a, m, tmp) : nullptr;
      float inv = 0.f;
      if (x != nullptr) {
        bool finite = true;
        const float dm = QAvx512::absmax(x, a.K, &finite) / 32767.0f;
        d[m] = finite ? dm : std::nanf("");
        if (finite && dm > 0.f) inv = 1.0f / dm;
        else x = nullptr;  // zero codes (a NaN/inf row gives NaN outputs through d)
      }
      const __m512 s = _mm512_set1_ps(inv);
      for (int64_t st = 0; st < steps; ++st) {
        const int64_t at = ((m / 16) * steps + st) * kTileBytes + (m % 16) * kStep, k0 = st * kStep;
        for (int v = 0; v < kStep; v += 16) {  // codes kept in int32 lanes, never stored as int16
          const int64_t left = x == nullptr ? 0 : std::max<int64_t>(0, std::min<int64_t>(16, a.K - k0 - v));
          const __mmask16 mk = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
          const __m512 xv = _mm512_maskz_loadu_ps(mk, x == nullptr ? nullptr : x + k0 + v);
          const __m512i q = QAvx512::codes16(xv, s);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(hi + at + v), _mm512_cvtepi32_epi8(_mm512_srai_epi32(q, 8)));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(lo + at + v),
                           _mm512_cvtepi32_epi8(_mm512_and_si512(q, _mm512_set1_epi32(0xFF))));
        }
      }
    }
  });
  op.d = d;
  op.w = w;
  op.hi = hi;
  op.lo = lo;
  return op;
}

namespace {

// One finished 32 x 32 output tile waiting for its epilogue: its hi/lo sums and where it goes.
struct PendingTile {
  const int32_t* shi = nullptr;
  const int32_t* slo = nullptr;
  int64_t m = 0, n = 0;
  int mr = 0, nr = 0;
};

// Epilogue rows [r0, r1) of a tile, 8 lanes of int64 at a time: S = 256 * hi + lo exactly,
// float(S) rounded once (vcvtqq2ps, as static_cast<float>(int64_t)), then
// o = fma(float(S), dx * s_w, bias). W8A8 (kA8): S is the int32 sum, o = float(S) * (dx * s_w)
// + bias rounded twice, as the dot-product tiles (linear_impl.h rows_int) compute it. Then GELU
// when fused (ops.linear(activation="gelu")).
template <bool kGelu, bool kA8>
void tile_epilogue(const LinearArgs& a, const QuantActs& qa, const PendingTile& t, int r0, int r1) {
  for (int r = r0; r < std::min(r1, t.mr); ++r) {
    float* o = a.out + (t.m + r) * a.N + t.n;
    const __m512 dx = _mm512_set1_ps(qa.d[t.m + r]);
    for (int h = 0; h < 2; ++h) {
      const int left = t.nr - 16 * h;
      if (left <= 0) break;
      const __mmask16 mk = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
      const int32_t* ph = t.shi + r * 32 + 16 * h;
      const __m512 scale = _mm512_mul_ps(dx, _mm512_maskz_loadu_ps(mk, a.wscale + t.n + 16 * h));
      const __m512 bias = a.bias ? _mm512_maskz_loadu_ps(mk, a.bias + t.n + 16 * h) : _mm512_setzero_ps();
      __m512 v;
      if constexpr (kA8) {
        // the rounding-mode form keeps GCC from contracting the multiply and add into an FMA
        const __m512 prod = _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ph)), scale,
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_add_ps(bias, prod);
      } else {
        const int32_t* pl = t.slo + r * 32 + 16 * h;
        __m256 half[2];
        for (int q = 0; q < 2; ++q) {
          const __m512i sh = _mm512_cvtepi32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(ph + 8 * q)));
          const __m512i sl = _mm512_cvtepi32_epi64(_mm256_load_si256(reinterpret_cast<const __m256i*>(pl + 8 * q)));
          half[q] = _mm512_cvtepi64_ps(_mm512_add_epi64(_mm512_slli_epi64(sh, 8), sl));
        }
        const __m512 sum = _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1);
        v = _mm512_fmadd_ps(sum, scale, bias);
      }
      if constexpr (kGelu) v = gelu_v<GeluAvx512, false>(v);
      _mm512_mask_storeu_ps(o + 16 * h, mk, v);
    }
  }
}

// The tiles' work is software-pipelined against the vector epilogue: tile t's hi and lo passes
// are issued, and between them (and after) the epilogue of tile t - 1 runs, half its rows each
// time, on sums stored one tile earlier (two sum buffers alternate). The AMX unit works through
// the queued tile multiplies while the vector ports run the epilogue: done after each tile, the
// epilogue waited for the last multiply and took ~1/3 of the time (stop 24). W8A8 (kA8) has one
// pass and runs the previous epilogue between and after its halves.
template <bool kGelu, bool kA8>
void tiles_amx(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const AmxOperands& op = *qa.amx;
  const int64_t steps = op.kp64 / kStep, tiles = steps * kTileBytes;  // bytes of one 16-row strip
  load_tile_config();
  alignas(64) int32_t sums[2][2][32 * 32];
  PendingTile prev;
  int buf = 0;
  // 32 rows at a time against every 32-column pair of the task (the other order, pairs outside,
  // measured the same on the embedder).
  for (int64_t m = m0; m < m1; m += 32) {  // m0 is a multiple of 32 (driver row blocks)
    for (int64_t n = n0; n < n1; n += 32) {  // n0 is a multiple of kGemmIntNr = 32 (driver)
      const int8_t* b0 = op.w + (n / 16) * tiles;
      const int8_t* b1 = b0 + tiles;
      int32_t* shi = sums[buf][0];
      int32_t* slo = sums[buf][1];
      const bool pending = prev.shi != nullptr;
      if constexpr (kA8) {  // one pass, the previous tile's epilogue between and after its halves
        const int8_t* codes = op.q8 + (m / 16) * tiles;
        zero_sums();
        tile_steps<false>(b0, b1, codes, tiles, 0, steps / 2);
        if (pending) tile_epilogue<kGelu, kA8>(a, qa, prev, 0, 16);
        tile_steps<false>(b0, b1, codes, tiles, steps / 2, steps);
        if (pending) tile_epilogue<kGelu, kA8>(a, qa, prev, 16, 32);
        store_sums(shi);
      } else {  // the hi and lo passes, the previous epilogue after each
        zero_sums();
        tile_steps<false>(b0, b1, op.hi + (m / 16) * tiles, tiles, 0, steps);
        if (pending) tile_epilogue<kGelu, kA8>(a, qa, prev, 0, 16);
        store_sums(shi);
        zero_sums();
        tile_steps<true>(b0, b1, op.lo + (m / 16) * tiles, tiles, 0, steps);
        if (pending) tile_epilogue<kGelu, kA8>(a, qa, prev, 16, 32);
        store_sums(slo);
      }
      prev = PendingTile{shi, slo, m, n, static_cast<int>(std::min<int64_t>(32, m1 - m)),
                         static_cast<int>(std::min<int64_t>(32, n1 - n))};
      buf ^= 1;
    }
  }
  if (prev.shi != nullptr) tile_epilogue<kGelu, kA8>(a, qa, prev, 0, 32);
  _tile_release();
}

}  // namespace

void linear_tile_amx(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const bool a8 = qa.amx->a8;
  if (a.gelu) a8 ? tiles_amx<true, true>(a, qa, m0, m1, n0, n1) : tiles_amx<true, false>(a, qa, m0, m1, n0, n1);
  else a8 ? tiles_amx<false, true>(a, qa, m0, m1, n0, n1) : tiles_amx<false, false>(a, qa, m0, m1, n0, n1);
}

}  // namespace infercore
