// Float-weight GEMMs on AMX-BF16 tiles for matmul precision "high" (LinearArgs::high;
// ops.linear(precision="high")): float32 and float16 weights as three bfloat16 products per
// multiply-add ("bf16x3", below), bfloat16 and fp8 weights, which bf16 holds exactly, as two
// (hi_x w + lo_x w: no lo_w; fp8's per-row scale multiplies the sums in the epilogue).
//
// Each float32 value is split exactly as x = hi + lo + r: hi = bf16(x) (round to nearest even),
// lo = bf16(x - hi) (x - hi is exact in float32), |r| <= 2^-17 |x|. Then
//   x . w ~= hi_x . hi_w + lo_x . hi_w + hi_x . lo_w
// drops lo_x * lo_w and the r terms (each <= 2^-17 relative per product): ~16 significant bits
// per product instead of float32's 24, accumulated in float32 by tdpbf16ps (bf16 x bf16
// products are exact in float32). This is PyTorch's float32 matmul precision "high" on CPUs
// (bf16x3) and the CPU cousin of CUTLASS's 3xTF32: relative error ~3e-6 on random data, ~1e-5
// worst case, against ~1e-7 for the float32 FMA GEMM (gemm_float_impl.h).
// Non-finite values: the split cannot carry them (inf - inf in lo, and inf * lo_w of either
// sign or 0 would turn an inf into NaN), so a call with any inf/NaN in x or W, or a finite value
// beyond bf16's range (|v| > ~3.39e38, where hi rounds to inf), falls back to the float32 GEMM
// (Bf16x3Operands::ok false): inf/NaN then propagate exactly as in float32 arithmetic.
//
// Tiles (palette 1, 16 rows x 64 bytes): C0..C3 = tmm0-3, a 32 x 32 float32 output tile as
// 2 x 2 tiles; A = tmm4-5 (16 activation rows x 32 K values); B = tmm6-7 (16 K pairs x 16
// weight rows x 2, the VNNI layout). Per 32 K values: load A_hi, B_hi -> 4 tdp; load A_lo
// (B_hi stays) -> 4 tdp; load A_hi, B_lo -> 4 tdp: 10 tile loads per 12 tdpbf16ps.
// Every operand is stored as contiguous 1 KiB tiles (bf16x3_prepare); the accumulators start
// from the bias (a row-stride-0 tile load). A finished tile goes to a scratch buffer and is
// copied out (GELU applied when fused) while the next tile's multiplies run, as in
// gemm_int16_amx.cpp: stored straight into out, the tile stores waited on their read-for-
// ownership misses and took ~20% of the kernel.
// Napkin (embedder FFN, M 4032, N 1536, K 384): 3 x 2.4 G bf16 MACs; at 512 bf16 MACs per
// cycle per core (the TMUL peak) ~2 ms on 2 cores at 3.5 GHz, against ~13 ms for the float32
// FMA GEMM at ~370 GFLOP/s. Measured (stop 24): 5.6 ms = ~840 "float32" GFLOP/s, ~2.3x.
#include <algorithm>
#include <atomic>
#include <cstring>

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

constexpr int64_t kStep = 32;       // K values per tile step (64 bytes of bf16)
constexpr int64_t kTileElems = 512;  // bf16 values per 1 KiB tile

#include "gelu_impl.h"  // gelu_v: the fused GELU epilogue, the same vector code as ops.gelu

// x (16 floats) -> bf16 hi and lo. Returns the lanes where hi is not finite (x inf/NaN, or
// beyond bf16's range): the call then falls back to the float32 GEMM.
inline __mmask16 split16(__m512 x, __m256bh* hi, __m256bh* lo) {
  const __m256bh h = _mm512_cvtneps_pbh(x);
  const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
  *hi = h;
  *lo = _mm512_cvtneps_pbh(_mm512_sub_ps(x, hf));
  return _mm512_fpclass_ps_mask(hf, 0x99);  // QNaN/SNaN/+inf/-inf
}

inline __mmask16 left_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

inline __m512 load_masked(const float* p, int64_t left) {
  return left <= 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(left_mask(left), p);
}

// Weight row `row`'s 32 values from k0 as exact floats, zero past K (o[0], o[1]), through the
// linear kernels' own decoders (QAvx512::dec_*); fp8 unscaled (dec_fp8 gives value * 2^-8,
// times 256 exactly), its row scale is applied in the epilogue.
inline void load_weights32(const LinearArgs& a, const char* row, int64_t k0, __m512* o) {
  const int64_t esz = linear_row_bytes(a.kind, 1), left = a.K - k0;
  if (row == nullptr || left <= 0) {
    o[0] = o[1] = _mm512_setzero_ps();
    return;
  }
  alignas(64) char tail[32 * 4];  // the last, partial step, zero padded
  const char* p = row + k0 * esz;
  if (left < 32) {
    std::memset(tail, 0, sizeof(tail));
    p = static_cast<const char*>(std::memcpy(tail, p, static_cast<size_t>(left * esz)));
  }
  switch (a.kind) {
    case WKind::kF16: QAvx512::dec_f16(reinterpret_cast<const uint16_t*>(p), o); break;
    case WKind::kBF16: QAvx512::dec_bf16(reinterpret_cast<const uint16_t*>(p), o); break;
    case WKind::kFp8:
      QAvx512::dec_fp8(reinterpret_cast<const uint8_t*>(p), o);
      o[0] = _mm512_mul_ps(o[0], _mm512_set1_ps(256.0f));
      o[1] = _mm512_mul_ps(o[1], _mm512_set1_ps(256.0f));
      break;
    default: QAvx512::dec_f32(reinterpret_cast<const float*>(p), o); break;
  }
}

}  // namespace

bool amx_bf16_usable() {
  static const bool usable = [] {
    const CpuFeatures& f = cpu_features();
    return !amx_disabled_by_env() && f.amx_bf16 && f.avx512_bf16 && request_tile_permission();
  }();
  return usable;
}

Bf16x3Operands bf16x3_prepare(const LinearArgs& a) {
  Bf16x3Operands op;
  op.steps = (a.K + kStep - 1) / kStep;
  op.mpad = (a.M + 31) / 32 * 32;
  op.npad = (a.N + 31) / 32 * 32;
  const int64_t steps = op.steps, groups = op.npad / 16;
  // Weights: per 16 weight rows and 32 K values one B tile [pair p][row c][2]: one row's 32
  // values are 16 pairs (one uint32 each), 64 bytes apart in the tile. bf16 and fp8 weights are
  // exact in bf16 (lo = 0): they need no lo tiles and two products per multiply-add (bf16x2).
  op.exact_w = a.kind == WKind::kBF16 || a.kind == WKind::kFp8;
  op.wscale = a.kind == WKind::kFp8 ? a.wscale : nullptr;
  uint16_t* whi = thread_pack_buffer<uint16_t, 0>(groups * steps * kTileElems);
  uint16_t* wlo = op.exact_w ? nullptr : thread_pack_buffer<uint16_t, 1>(groups * steps * kTileElems);
  const char* w = static_cast<const char*>(a.w);
  const int64_t row_bytes = linear_row_bytes(a.kind, a.K);
  std::atomic<bool> ok{true};
  parallel_for(0, groups, 1, [&](int64_t g0, int64_t g1) {
    __mmask16 bad = 0;
    const __m512i pair_offsets = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                                    _mm512_set1_epi32(16));
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t c = 0; c < 16; ++c) {
        const int64_t n = g * 16 + c;
        const char* row = n < a.N ? w + n * row_bytes : nullptr;
        for (int64_t s = 0; s < steps; ++s) {
          __m512 v[2];
          load_weights32(a, row, s * kStep, v);
          __m256bh h0, l0, h1, l1;
          bad |= split16(v[0], &h0, &l0);
          bad |= split16(v[1], &h1, &l1);
          const __m512i hp = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)h0), (__m256i)h1, 1);
          const __m512i lp = _mm512_inserti64x4(_mm512_castsi256_si512((__m256i)l0), (__m256i)l1, 1);
          const int64_t at = (g * steps + s) * kTileElems + c * 2;  // pair p of row c at p * 32 + c * 2
          _mm512_i32scatter_epi32(whi + at, pair_offsets, hp, 4);
          if (wlo != nullptr) _mm512_i32scatter_epi32(wlo + at, pair_offsets, lp, 4);
        }
      }
    }
    if (bad) ok = false;
  });
  if (!ok) {  // the float32 GEMM runs instead: no need to split x
    op.ok = false;
    return op;
  }
  // Activations: row m's 32 values of step s are row m % 16 of tile (m / 16, s); rows past M
  // and values past K are zero.
  uint16_t* ahi = thread_pack_buffer<uint16_t, 2>(op.mpad * steps * kStep);
  uint16_t* alo = thread_pack_buffer<uint16_t, 3>(op.mpad * steps * kStep);
  parallel_for(0, op.mpad, std::max<int64_t>(1, 16384 / (steps * kStep)), [&](int64_t r0, int64_t r1) {
    __mmask16 bad = 0;
    for (int64_t m = r0; m < r1; ++m) {
      const float* x = m < a.M ? a.x + m * a.K : nullptr;
      for (int64_t s = 0; s < steps; ++s) {
        const int64_t k0 = s * kStep, left = x == nullptr ? 0 : a.K - k0;
        __m256bh h0, l0, h1, l1;
        bad |= split16(load_masked(x == nullptr ? nullptr : x + k0, left), &h0, &l0);
        bad |= split16(load_masked(x == nullptr ? nullptr : x + k0 + 16, left - 16), &h1, &l1);
        const int64_t at = ((m / 16) * steps + s) * kTileElems + (m % 16) * kStep;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ahi + at), (__m256i)h0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(ahi + at + 16), (__m256i)h1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(alo + at), (__m256i)l0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(alo + at + 16), (__m256i)l1);
      }
    }
    if (bad) ok = false;
  });
  // The bias padded to npad (zeros when there is none): loaded into the accumulators with row
  // stride 0, so every output row starts from it.
  float* bias = thread_pack_buffer<float, 4>(op.npad);
  // (fp8: zeros; its epilogue computes acc * scale + bias)
  for (int64_t n = 0; n < op.npad; ++n) bias[n] = a.bias != nullptr && n < a.N && op.wscale == nullptr ? a.bias[n] : 0.0f;
  op.whi = whi;
  op.wlo = wlo;
  op.ahi = ahi;
  op.alo = alo;
  op.bias = bias;
  op.ok = ok;
  return op;
}

namespace {

// The 2 x 2 tile step: A rows 0-15 / 16-31 in tmm4 / tmm5 (the second strip `strip` values on),
// B's two 16-column groups in tmm6 / tmm7, accumulators tmm0-3.
inline void load_a(const uint16_t* p, int64_t strip) {
  _tile_loadd(4, p, 64);
  _tile_loadd(5, p + strip, 64);
}
inline void load_b(const uint16_t* p, int64_t strip) {
  _tile_loadd(6, p, 64);
  _tile_loadd(7, p + strip, 64);
}
inline void dp_2x2() {
  _tile_dpbf16ps(0, 4, 6);
  _tile_dpbf16ps(1, 4, 7);
  _tile_dpbf16ps(2, 5, 6);
  _tile_dpbf16ps(3, 5, 7);
}

// A finished 32 x 32 tile in scratch, waiting to be copied to out.
struct PendingTile {
  const float* sums = nullptr;
  int64_t m = 0, n = 0;
  int mr = 0, nr = 0;
};

// Rows [r0, r1) of a finished tile to out: fp8 (kScaled) applies its row scales and the bias
// here (fma(acc, s_w, bias)); the other kinds started from the bias. Then GELU when fused.
template <bool kGelu, bool kScaled>
void tile_epilogue(const LinearArgs& a, const PendingTile& t, int r0, int r1) {
  const __mmask16 lo = left_mask(t.nr), hi = left_mask(t.nr - 16);
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, b0 = s0, b1 = s0;
  if constexpr (kScaled) {
    s0 = _mm512_maskz_loadu_ps(lo, a.wscale + t.n);
    s1 = _mm512_maskz_loadu_ps(hi, a.wscale + t.n + 16);
    if (a.bias != nullptr) {
      b0 = _mm512_maskz_loadu_ps(lo, a.bias + t.n);
      b1 = _mm512_maskz_loadu_ps(hi, a.bias + t.n + 16);
    }
  }
  for (int r = r0; r < std::min(r1, t.mr); ++r) {
    float* o = a.out + (t.m + r) * a.N + t.n;
    __m512 v0 = _mm512_load_ps(t.sums + r * 32), v1 = _mm512_load_ps(t.sums + r * 32 + 16);
    if constexpr (kScaled) {
      v0 = _mm512_fmadd_ps(v0, s0, b0);
      v1 = _mm512_fmadd_ps(v1, s1, b1);
    }
    if constexpr (kGelu) {
      v0 = gelu_v<GeluAvx512, false>(v0);
      v1 = gelu_v<GeluAvx512, false>(v1);
    }
    _mm512_mask_storeu_ps(o, lo, v0);
    _mm512_mask_storeu_ps(o + 16, hi, v1);
  }
}

// kExactW: weights exact in bf16 (bf16, fp8): two products per multiply-add, no lo tiles.
template <bool kGelu, bool kExactW, bool kScaled>
void tiles_bf16x3(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const Bf16x3Operands& op = *qa.bf16x3;
  const int64_t steps = op.steps, strip = steps * kTileElems;  // bf16 values of one 16-row strip
  const int64_t half = steps / 2;
  load_tile_config();
  alignas(64) float sums[2][32 * 32];
  PendingTile prev;
  int buf = 0;
  for (int64_t m = m0; m < m1; m += 32) {  // m0 is a multiple of 32 (driver row blocks)
    const uint16_t* ah = op.ahi + (m / 16) * strip;
    const uint16_t* al = op.alo + (m / 16) * strip;
    for (int64_t n = n0; n < n1; n += 32) {  // n0 is a multiple of 32 (driver panels)
      const uint16_t* bh = op.whi + (n / 16) * strip;
      const uint16_t* bl = kExactW ? nullptr : op.wlo + (n / 16) * strip;
      _tile_loadd(0, op.bias + n, 0);
      _tile_loadd(1, op.bias + n + 16, 0);
      _tile_loadd(2, op.bias + n, 0);
      _tile_loadd(3, op.bias + n + 16, 0);
      for (int64_t s = 0; s < steps; ++s) {
        // the previous tile's epilogue in two halves, while these multiplies queue
        if (s == half && prev.sums != nullptr) tile_epilogue<kGelu, kScaled>(a, prev, 0, 16);
        const int64_t at = s * kTileElems;
        load_a(ah + at, strip);  // hi_x . hi_w
        load_b(bh + at, strip);
        dp_2x2();
        load_a(al + at, strip);  // lo_x . hi_w
        dp_2x2();
        if constexpr (!kExactW) {  // hi_x . lo_w
          load_a(ah + at, strip);
          load_b(bl + at, strip);
          dp_2x2();
        }
      }
      if (prev.sums != nullptr) tile_epilogue<kGelu, kScaled>(a, prev, half == 0 ? 0 : 16, 32);
      float* out = sums[buf];
      _tile_stored(0, out, 128);
      _tile_stored(1, out + 16, 128);
      _tile_stored(2, out + 16 * 32, 128);
      _tile_stored(3, out + 16 * 32 + 16, 128);
      prev = PendingTile{out, m, n, static_cast<int>(std::min<int64_t>(32, m1 - m)),
                         static_cast<int>(std::min<int64_t>(32, n1 - n))};
      buf ^= 1;
    }
  }
  if (prev.sums != nullptr) tile_epilogue<kGelu, kScaled>(a, prev, 0, 32);
  _tile_release();
}

template <bool kExactW, bool kScaled>
void run_tiles(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (a.gelu) tiles_bf16x3<true, kExactW, kScaled>(a, qa, m0, m1, n0, n1);
  else tiles_bf16x3<false, kExactW, kScaled>(a, qa, m0, m1, n0, n1);
}

}  // namespace

void linear_tile_bf16x3(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const Bf16x3Operands& op = *qa.bf16x3;
  if (op.wscale != nullptr) run_tiles<true, true>(a, qa, m0, m1, n0, n1);  // fp8: exact, scales in the epilogue
  else if (op.exact_w) run_tiles<true, false>(a, qa, m0, m1, n0, n1);      // bf16
  else run_tiles<false, false>(a, qa, m0, m1, n0, n1);                     // float32, float16
}

}  // namespace infercore
