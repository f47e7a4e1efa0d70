// The linear kernels written once over an ops struct Q (QScalar, QAvx2, QAvx512). Included
// inside an anonymous namespace by each ISA translation unit, after linear.h, fp8.h and the
// ops header, so instantiations have internal linkage and never mix across ISAs.
//
// Shape of the work: a tile is MR (<= 4) activation rows times NR (<= 2) weight rows (4 for the
// block-scaled kinds, rows4_blocks; 8 in the block kinds' r8 GEMM from a few rows,
// gemm_blocks_r8_impl.h); each weight block is decoded once into registers for all
// MR rows. The driver (linear.cpp) hands
// each task a panel of weight rows (~48 KiB, stays in L2) and a block of up to 128 activation
// rows, so weights come from DRAM once per 128 rows of x (exactly once for GEMV).
//   GEMV (M <= 8): bytes = N * row_bytes (+ tiny x); flops = 2*M*N*K. Example 4096 x 4096:
//     int8 16.8 MB (q4_0 9.4 MB, f32 67 MB) per token for 33.5 MFLOP = 2 flop/byte, while a
//     core sustains ~50 flop/byte from cache: bound by the weight read. At ~31 GB/s (both
//     cores, see ARCHITECTURE) that is 0.54 ms for int8, 0.30 ms for q4_0, 2.2 ms for f32.
//   GEMM (M > 8): 2*M*N*K flops dominate (M=512, 4096^2: 17 GFLOP). Integer kinds do 32 MACs
//     per (abs/sign +) maddubs + madd (one vpdpbusd with VNNI), float kinds W MACs per FMA.
//     Float activations are walked in K chunks of 1024 so a tile's 4 rows stay in L1.
static inline uint16_t load_u16(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

template <WKind KIND>
constexpr bool kQuantizedActs = KIND == WKind::kInt8 || KIND == WKind::kInt4 || KIND == WKind::kQ8_0 ||
                                KIND == WKind::kQ4_0 || KIND == WKind::kQ4_1;

template <WKind KIND>
static inline float scalar_weight(const char* wrow, int64_t k) {
  if constexpr (KIND == WKind::kF32) return reinterpret_cast<const float*>(wrow)[k];
  else if constexpr (KIND == WKind::kF16) return half_to_float(reinterpret_cast<const uint16_t*>(wrow)[k]);
  else if constexpr (KIND == WKind::kBF16) return bf16_to_float(reinterpret_cast<const uint16_t*>(wrow)[k]);
  else return fp8_e4m3_decode(reinterpret_cast<const uint8_t*>(wrow)[k]) * (1.0f / 256.0f);
}

#include "gemm_float_impl.h"
#include "gemm_int16_impl.h"
#include "quant_rows8_impl.h"

// Register tile: MR (<= 4) activation rows x NR (<= 2) weight rows. Each weight block is
// decoded once for all MR rows and each activation vector loaded once for both weight rows.
// res[r * NR + j] = dot(x row m0 + r, weight row n + j). Scalar multiply-adds are explicit
// std::fma so that results never depend on the tile shape (and so on the thread count)
// through the compiler's choice to contract a*b+c.

// Float activations: f32/f16/bf16/fp8 weights decoded to float in registers.
template <class Q, WKind KIND, int MR, int NR>
void rows_float(const LinearArgs& a, int64_t m0, int64_t n, const char* const* wrow, int64_t k0, int64_t k1,
                float* res) {
  constexpr int NV = 32 / Q::W;
  const int64_t K = a.K, nb = K / 32, b0 = k0 / 32, b1 = std::min(nb, k1 / 32);
  const int64_t tail0 = k1 >= K ? nb * 32 : K;  // the K % 32 tail belongs to the last chunk
  const float* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = a.x + (m0 + r) * K;
  typename Q::F acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) acc[r][j] = Q::zero();
  // The next NR rows follow these in memory: touch them at this pace (NR x 32 values per block)
  // so they arrive from DRAM while these compute (decode only: a GEMM chunk re-reads its panel).
  constexpr int64_t esz = KIND == WKind::kF32 ? 4 : KIND == WKind::kFp8 ? 1 : 2;
  const char* wbase = static_cast<const char*>(a.w);
  const int64_t next = (n + NR) * K * esz, wend = a.N * K * esz, step = NR * 32 * esz;
  const bool pf = a.M <= 8;
  for (int64_t b = b0; b < b1; ++b) {
    for (int64_t off = next + b * step; pf && off < next + (b + 1) * step && off < wend; off += 64)
      __builtin_prefetch(wbase + off);
    typename Q::F wv[NR][NV];
    for (int j = 0; j < NR; ++j) {
      const char* w = wrow[j];
      if constexpr (KIND == WKind::kF32) Q::dec_f32(reinterpret_cast<const float*>(w) + b * 32, wv[j]);
      else if constexpr (KIND == WKind::kF16) Q::dec_f16(reinterpret_cast<const uint16_t*>(w) + b * 32, wv[j]);
      else if constexpr (KIND == WKind::kBF16) Q::dec_bf16(reinterpret_cast<const uint16_t*>(w) + b * 32, wv[j]);
      else Q::dec_fp8(reinterpret_cast<const uint8_t*>(w) + b * 32, wv[j]);
    }
    for (int v = 0; v < NV; ++v)
      for (int r = 0; r < MR; ++r) {
        const typename Q::F xv = Q::load(x[r] + b * 32 + v * Q::W);
        for (int j = 0; j < NR; ++j) acc[r][j] = Q::fma(xv, wv[j][v], acc[r][j]);
      }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) res[r * NR + j] = Q::hsum(acc[r][j]);
  for (int64_t k = tail0; k < K; ++k)
    for (int j = 0; j < NR; ++j) {
      const float wk = scalar_weight<KIND>(wrow[j], k);
      for (int r = 0; r < MR; ++r) res[r * NR + j] = std::fma(x[r][k], wk, res[r * NR + j]);
    }
  if constexpr (KIND == WKind::kFp8)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) res[r * NR + j] *= a.wscale[n + j] * 256.0f;
}

// int8 weights x int8 activations (per-token scale): whole-row int32 sums, one scale at the end.
template <class Q, WKind KIND, int MR, int NR>
void rows_int(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t n, const char* const* wrow,
              int64_t k0, int64_t k1, float* res) {
  const int64_t K = a.K, nb = K / 32, b0 = k0 / 32, b1 = std::min(nb, k1 / 32);
  const int64_t tail0 = k1 >= K ? nb * 32 : K;  // the K % 32 tail belongs to the last chunk
  const int8_t* xq[MR];
  for (int r = 0; r < MR; ++r) xq[r] = qa.q + (m0 + r) * qa.kp;
  {
    typename Q::IAcc acc[MR][NR];
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] = Q::izero();
    // The next NR rows follow these in memory: touch them at this pace (NR * 32 bytes per block)
    // so they arrive from DRAM while these compute (as rows4_blocks does).
    const char* w = static_cast<const char*>(a.w);
    const int64_t next = (n + NR) * K, wend = a.N * K;  // byte offsets of int8 rows (K bytes each)
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t off = next + b * 32 * NR; (b & 1) == 0 && off < next + (b + 2) * 32 * NR && off < wend; off += 64)
        __builtin_prefetch(w + off);
      typename Q::I wb[NR];
      for (int j = 0; j < NR; ++j) wb[j] = Q::load_i8(reinterpret_cast<const int8_t*>(wrow[j]) + b * 32);
      for (int r = 0; r < MR; ++r) {
        const typename Q::I xb = Q::load_i8(xq[r] + b * 32);
        for (int j = 0; j < NR; ++j) acc[r][j] = Q::iadd(acc[r][j], Q::dot_ss(wb[j], xb));
      }
    }
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) {
        const int8_t* w = reinterpret_cast<const int8_t*>(wrow[j]);
        int32_t t = Q::ihsum(acc[r][j]);
        for (int64_t k = tail0; k < K; ++k) t += static_cast<int32_t>(w[k]) * xq[r][k];
        res[r * NR + j] = w8a8_product(t, qa.d[m0 + r], a.wscale[n + j]);  // + bias in tile_kind
      }
  }
}

// Block-scaled kinds (q8_0, q4_0, q4_1, int4) below the r8 GEMM's row count (uses_r8_gemm): MR (<= 4)
// activation rows x 4 weight rows per step. Each weight block is unpacked once for all MR rows,
// each activation block loaded once for the 4 weight rows, and the four block dots of an
// activation row become four exact floats in one hadd tree (R4), so one FMA applies the four
// rows' scales. Per 32-weight block and row (AVX2, q4_1, MR = 1) that is ~10 instructions
// (0.3 per weight) where one row at a time needed ~25. Every lane follows its own row only, so
// a row's result never depends on its neighbours, on the tile shape or on the thread count.
//   res[r * 4 + j] = sum_b float(dot(wq_j[b], xq_r[b])) * (dw_j[b] * dx_r[b]) + sum_b mw_j[b] * ds_r[b]
template <WKind KIND>
constexpr bool kBlockScaled = is_block_kind(KIND);

template <class Q, WKind KIND, int MR>
void rows4_blocks(const LinearArgs& a, const QuantActs& qa, int64_t m0, const char* const* wrow,
                  const int64_t* nrow, float* res) {
  // Bytes per 32 values in the weight row (int4 keeps its float16 scales apart, per group).
  constexpr int64_t kBlock = KIND == WKind::kQ8_0 ? 34 : KIND == WKind::kQ4_0 ? 18 : KIND == WKind::kQ4_1 ? 20 : 16;
  using R4 = typename Q::R4;
  const int64_t nb = a.K / 32;  // the block kinds have K % 32 == 0 (checked in linear_forward)
  const int8_t* xq[MR];
  for (int r = 0; r < MR; ++r) xq[r] = qa.q + (m0 + r) * qa.kp;
  R4 acc[MR], accm[MR];
  for (int r = 0; r < MR; ++r) acc[r] = accm[r] = Q::r4_zero();
  // int4: the float16 scales of each weight row; group = 32 << gshift (a power of two).
  const uint16_t* gscale[4] = {};
  int gshift = 0;
  if constexpr (KIND == WKind::kInt4) {
    gshift = __builtin_ctzll(static_cast<unsigned long long>(a.group)) - 5;
    for (int j = 0; j < 4; ++j) gscale[j] = a.gscale + nrow[j] * (a.K / a.group);
  }
  // The next 4 rows follow these in memory: touch them at this group's pace (4 blocks' bytes per
  // step, two lines) so they arrive from DRAM by the time they are read.
  const char* next = wrow[3] + linear_row_bytes(KIND, a.K);
  for (int64_t b = 0; b < nb; ++b) {
    __builtin_prefetch(next + b * 4 * kBlock);
    __builtin_prefetch(next + b * 4 * kBlock + 64);
    typename Q::I wb[4];
    uint16_t dh[4], mh[4] = {};
    for (int j = 0; j < 4; ++j) {
      const char* blk = wrow[j] + b * kBlock;
      if constexpr (KIND == WKind::kInt4) dh[j] = gscale[j][b >> gshift];
      else dh[j] = load_u16(blk);
      if constexpr (KIND == WKind::kQ8_0) wb[j] = Q::load_i8(reinterpret_cast<const int8_t*>(blk + 2));
      else if constexpr (KIND == WKind::kInt4) wb[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk));
      else if constexpr (KIND == WKind::kQ4_0) wb[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 2));
      else wb[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 4));
      if constexpr (KIND == WKind::kQ4_1) mh[j] = load_u16(blk + 2);
    }
    const R4 dw = Q::r4_halves(dh[0], dh[1], dh[2], dh[3]);
    // The 4-bit kinds dot the unsigned nibbles (no sign trick) and add the offset through the
    // block's activation sum: q4_0/int4 (q - 8) * d = q * d + (-8 d); q4_1 q * d + m.
    R4 mw = dw;
    if constexpr (KIND == WKind::kQ4_1) mw = Q::r4_halves(mh[0], mh[1], mh[2], mh[3]);
    else if constexpr (KIND != WKind::kQ8_0) mw = Q::r4_mul(dw, Q::r4_set1(-8.0f));
    for (int r = 0; r < MR; ++r) {
      const int64_t bi = (m0 + r) * nb + b;
      const typename Q::I xb = Q::load_i8(xq[r] + b * 32);
      typename Q::IAcc p[4];
      for (int j = 0; j < 4; ++j) p[j] = KIND == WKind::kQ8_0 ? Q::dot_ss(wb[j], xb) : Q::dot_us(wb[j], xb);
      acc[r] = Q::r4_fma(Q::r4_dots(p[0], p[1], p[2], p[3]), Q::r4_mul(dw, Q::r4_set1(qa.d[bi])), acc[r]);
      if constexpr (KIND != WKind::kQ8_0) accm[r] = Q::r4_fma(mw, Q::r4_set1(qa.ds[bi]), accm[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float s[4], m[4];
    Q::r4_store(acc[r], s);
    Q::r4_store(accm[r], m);
    for (int j = 0; j < 4; ++j) res[r * 4 + j] = s[j] + m[j];
  }
}

// Weight rows go in groups of 4 from n0; a short last group repeats its last row (computed,
// then dropped), which keeps every row on the same arithmetic whatever the panel split.
template <class Q, WKind KIND>
void tile_blocks(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t rb = linear_row_bytes(KIND, a.K);
  const char* w = static_cast<const char*>(a.w);
  for (int64_t mb = m0; mb < m1; mb += 4) {
    const int64_t mr = std::min<int64_t>(4, m1 - mb);
    for (int64_t n = n0; n < n1; n += 4) {
      const int64_t nr = std::min<int64_t>(4, n1 - n);
      int64_t nrow[4];
      const char* wrow[4];
      for (int j = 0; j < 4; ++j) {
        nrow[j] = n + std::min<int64_t>(j, nr - 1);
        wrow[j] = w + nrow[j] * rb;
      }
      float res[16];
      switch (mr) {
        case 4: rows4_blocks<Q, KIND, 4>(a, qa, mb, wrow, nrow, res); break;
        case 3: rows4_blocks<Q, KIND, 3>(a, qa, mb, wrow, nrow, res); break;
        case 2: rows4_blocks<Q, KIND, 2>(a, qa, mb, wrow, nrow, res); break;
        default: rows4_blocks<Q, KIND, 1>(a, qa, mb, wrow, nrow, res); break;
      }
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t j = 0; j < nr; ++j)
          a.out[(mb + r) * a.N + n + j] = (a.bias ? a.bias[n + j] : 0.0f) + res[r * 4 + j];
    }
  }
}

#include "gemm_blocks_r8_impl.h"

template <class Q, WKind KIND, int MR, int NR>
void rows(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t n, const char* const* wrow, int64_t k0,
          int64_t k1, float* res) {
  if constexpr (KIND == WKind::kInt8)
    rows_int<Q, KIND, MR, NR>(a, qa, m0, n, wrow, k0, k1, res);
  else
    rows_float<Q, KIND, MR, NR>(a, m0, n, wrow, k0, k1, res);
}

template <class Q, WKind KIND, int NR>
void rows_mr(int64_t mr, const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t n, const char* const* wrow,
             int64_t k0, int64_t k1, float* res) {
  switch (mr) {
    case 4: rows<Q, KIND, 4, NR>(a, qa, m0, n, wrow, k0, k1, res); break;
    case 3: rows<Q, KIND, 3, NR>(a, qa, m0, n, wrow, k0, k1, res); break;
    case 2: rows<Q, KIND, 2, NR>(a, qa, m0, n, wrow, k0, k1, res); break;
    default: rows<Q, KIND, 1, NR>(a, qa, m0, n, wrow, k0, k1, res); break;
  }
}

// GEMM (M > 8) walks K in chunks so that the 4 activation rows of a tile (float32) stay in L1
// while the weight panel's chunk stays in L2; outputs accumulate across chunks. Quantized
// activations are 4x smaller and are not chunked. GEMV (M <= 8) is a single pass over K.
template <class Q, WKind KIND>
void tile_kind(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (uses_int16_gemm(KIND, a.M)) {  // int8 weights x int16 activation codes (gemm_int16_impl.h)
    gemm_int16<Q>(a, qa, m0, m1, n0, n1);
    return;
  }
  if (uses_float_gemm(KIND, a.M)) {  // packed register-tiled float GEMM (gemm_float_impl.h)
    gemm_float<Q>(a, qa.wpack, m0, m1, n0, n1);
    return;
  }
  if constexpr (kBlockScaled<KIND>) {
    if (uses_r8_gemm(KIND, a.M))  // 8-row interleaved panels (gemm_blocks_r8_impl.h)
      tile_blocks_r8<Q, KIND>(a, qa, m0, m1, n0, n1);
    else
      tile_blocks<Q, KIND>(a, qa, m0, m1, n0, n1);
  } else {
    const int64_t rb = linear_row_bytes(KIND, a.K);
    const int64_t kc = (a.M > 8 && !kQuantizedActs<KIND>) ? 1024 : a.K;
    const char* w = static_cast<const char*>(a.w);
    for (int64_t k0 = 0; k0 < a.K; k0 += kc) {
      const int64_t k1 = std::min(a.K, k0 + kc);
      for (int64_t mb = m0; mb < m1; mb += 4) {
        const int64_t mr = std::min<int64_t>(4, m1 - mb);
        for (int64_t n = n0; n < n1; n += 2) {
          const int nr = n + 1 < n1 ? 2 : 1;
          const char* wrow[2] = {w + n * rb, w + (n + nr - 1) * rb};
          float res[8];
          if (nr == 2) rows_mr<Q, KIND, 2>(mr, a, qa, mb, n, wrow, k0, k1, res);
          else rows_mr<Q, KIND, 1>(mr, a, qa, mb, n, wrow, k0, k1, res);
          for (int64_t r = 0; r < mr; ++r)
            for (int j = 0; j < nr; ++j) {
              float* o = a.out + (mb + r) * a.N + n + j;
              *o = (k0 == 0 ? (a.bias ? a.bias[n + j] : 0.0f) : *o) + res[r * nr + j];
            }
        }
      }
    }
  }
}

template <class Q>
void linear_tile_dispatch(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  switch (a.kind) {
    case WKind::kF32: tile_kind<Q, WKind::kF32>(a, qa, m0, m1, n0, n1); break;
    case WKind::kF16: tile_kind<Q, WKind::kF16>(a, qa, m0, m1, n0, n1); break;
    case WKind::kBF16: tile_kind<Q, WKind::kBF16>(a, qa, m0, m1, n0, n1); break;
    case WKind::kFp8: tile_kind<Q, WKind::kFp8>(a, qa, m0, m1, n0, n1); break;
    case WKind::kInt8: tile_kind<Q, WKind::kInt8>(a, qa, m0, m1, n0, n1); break;
    case WKind::kInt4: tile_kind<Q, WKind::kInt4>(a, qa, m0, m1, n0, n1); break;
    case WKind::kQ8_0: tile_kind<Q, WKind::kQ8_0>(a, qa, m0, m1, n0, n1); break;
    case WKind::kQ4_0: tile_kind<Q, WKind::kQ4_0>(a, qa, m0, m1, n0, n1); break;
    case WKind::kQ4_1: tile_kind<Q, WKind::kQ4_1>(a, qa, m0, m1, n0, n1); break;
  }
}
