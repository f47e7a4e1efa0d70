// Bidirectional attention for encoder models (BERT) over packed QKV rows, a sequence's heads at a
// time, written once over an attention vector type A (AttnScalar, AttnAvx2, AttnAvx512).
// Included inside an anonymous namespace by each attention translation unit.
//
// A sequence of an embedding batch is short (tens to a few hundred tokens), so its whole L x L
// score matrix for one head fits in L1/L2 and needs no online softmax: gather Q (pre-scaled), K
// transposed and V into dense scratch, then S = Q K^T as a register-tiled GEMM (R query rows x
// 2 key vectors: per d, 2 loads + R broadcasts + 2R FMAs), exact softmax per row, O = P V (R/2
// rows x 32 output columns: per key, 32/W loads + R/2 broadcasts + R/2 * 32/W FMAs). R = 8
// with AVX-512 (32 registers; 16 accumulators), 4 with AVX2 (16 registers). The scratch is
// 64-byte aligned: 16 bytes off, as std::vector's large blocks are, every zmm load split a cache
// line (R = 4 with split loads: ~28% of one core's FMA peak on MiniLM, stop 24).
// Napkin math, all-MiniLM-L6-v2 (H 12, D 32) at L = 63: 4 L^2 D = 0.51 MFLOP per (sequence,
// head) plus L^2 exps; ~4 us at half the FMA peak of one core, where the paged kernel's tile
// loop (built for long contexts in scattered blocks) took ~20 us.
//
// Every row is computed on its own in a fixed order, so results do not depend on the thread
// count or on the other sequences of the batch.
constexpr int64_t kEncCols = 32;  // output columns per P V register tile (D is padded to it)

template <class A>
constexpr int enc_rows() {  // query rows per block (scores tile); P V takes half of them at a time
  return A::W >= 16 ? 8 : 4;
}

inline int64_t enc_round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// s[r][j .. j + 2W) = q_r . k_j for R rows (compile-time, so the accumulators stay in registers)
template <class A, int R>
inline void enc_scores(const float* q, int64_t dp, const float* kt, int64_t lp, int64_t D, float* s) {
  using F = typename A::F;
  constexpr int W = A::W;
  for (int64_t j = 0; j < lp; j += 2 * W) {
    F acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = A::zero();
    for (int64_t d = 0; d < D; ++d) {
      const F k0 = A::loadw(kt + d * lp + j), k1 = A::loadw(kt + d * lp + j + W);
      for (int r = 0; r < R; ++r) {
        const F qv = A::set1(q[r * dp + d]);
        acc[r][0] = A::fma(qv, k0, acc[r][0]);
        acc[r][1] = A::fma(qv, k1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      A::storew(s + r * lp + j, acc[r][0]);
      A::storew(s + r * lp + j + W, acc[r][1]);
    }
  }
}

template <class A, int R>
inline void enc_scores_rows(int rb, const float* q, int64_t dp, const float* kt, int64_t lp, int64_t D, float* s) {
  if constexpr (R > 1) {
    if (rb < R) return enc_scores_rows<A, R - 1>(rb, q, dp, kt, lp, D, s);
  }
  enc_scores<A, R>(q, dp, kt, lp, D, s);
}

// acc[r] = sum_j p_r[j] * v[j][c0 .. c0 + kEncCols) for R rows, scaled by inv[r], into out rows
template <class A, int R>
inline void enc_pv(const float* p, int64_t lp, const float* v, int64_t dp, int64_t L, int64_t c0, const float* inv,
                   float* const* orow, int64_t ncols) {
  using F = typename A::F;
  constexpr int W = A::W;
  constexpr int NC = static_cast<int>(kEncCols / W);
  F acc[R][NC];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) acc[r][c] = A::zero();
  for (int64_t j = 0; j < L; ++j) {
    F vv[NC];
    for (int c = 0; c < NC; ++c) vv[c] = A::loadw(v + j * dp + c0 + c * W);
    for (int r = 0; r < R; ++r) {
      const F pv = A::set1(p[r * lp + j]);
      for (int c = 0; c < NC; ++c) acc[r][c] = A::fma(pv, vv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(64) float tile[kEncCols];
    for (int c = 0; c < NC; ++c) A::storew(tile + c * W, A::mul(acc[r][c], A::set1(inv[r])));
    for (int64_t d = 0; d < ncols; ++d) orow[r][d] = tile[d];
  }
}

template <class A, int R>
inline void enc_pv_rows(int rows, const float* p, int64_t lp, const float* v, int64_t dp, int64_t L, int64_t c0,
                        const float* inv, float* const* orow, int64_t ncols) {
  if constexpr (R > 1) {
    if (rows < R) return enc_pv_rows<A, R - 1>(rows, p, lp, v, dp, L, c0, inv, orow, ncols);
  }
  enc_pv<A, R>(p, lp, v, dp, L, c0, inv, orow, ncols);
}

// Attention of one head whose Q (scaled), K^T and V sit in dense scratch; writes its out rows.
template <class A>
void encoder_head(const float* q, const float* kt, const float* v, int64_t dp, int64_t lp, int64_t D, int64_t L,
                  int64_t H, int64_t h, int64_t first, float* out, float* s) {
  using F = typename A::F;
  constexpr int W = A::W;
  constexpr int RB = enc_rows<A>();
  for (int64_t i0 = 0; i0 < L; i0 += RB) {
    const int rb = static_cast<int>(std::min<int64_t>(RB, L - i0));
    // scores of rows i0 .. i0 + rb against all keys, two key vectors at a time
    enc_scores_rows<A, RB>(rb, q + i0 * dp, dp, kt, lp, D, s);
    // exact softmax per row over the L real keys (padding keys get probability 0)
    float inv[RB];
    for (int r = 0; r < rb; ++r) {
      float* sr = s + r * lp;
      for (int64_t j = L; j < lp; ++j) sr[j] = -std::numeric_limits<float>::infinity();
      F mx = A::set1(-std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < lp; j += W) mx = A::max(mx, A::loadw(sr + j));
      const F mv = A::set1(A::hmax(mx));
      F sum = A::zero();
      for (int64_t j = 0; j < lp; j += W) {
        const F e = A::exp(A::sub(A::loadw(sr + j), mv));
        A::storew(sr + j, e);
        sum = A::add(sum, e);
      }
      float total = A::hsum(sum);
      for (int64_t j = L; j < lp; ++j) {  // exp clamps its argument at -87: remove those crumbs
        total -= sr[j];
        sr[j] = 0.f;
      }
      inv[r] = 1.f / total;
    }
    // O = P V for the block's rows, RB / 2 rows at a time, kEncCols output columns per tile
    constexpr int PR = RB / 2;
    for (int r0 = 0; r0 < rb; r0 += PR) {
      const int rows = std::min(PR, rb - r0);
      for (int64_t c0 = 0; c0 < dp; c0 += kEncCols) {
        float* orow[PR];
        for (int r = 0; r < rows; ++r) orow[r] = out + ((first + i0 + r0 + r) * H + h) * D + c0;
        const int64_t ncols = std::min(D, c0 + kEncCols) - c0;
        enc_pv_rows<A, PR>(rows, s + r0 * lp, lp, v, dp, L, c0, inv + r0, orow, ncols);
      }
    }
  }
}

// Heads [h0, h1) of the sequence at tokens [first, first + L). The gather goes token by token,
// copying each token's q, k and v segments front to back (the packed rows are 3 H D floats
// apart, so walking one head across tokens would touch a new page per token); K is transposed
// per head just before use, from and into L1.
// scratch: a per-thread buffer, grown here to what the heads need.
template <class A>
void encoder_attend(const float* qkv, int64_t H, int64_t D, int64_t first, int64_t L, int64_t h0, int64_t h1,
                    float scale, float* out, std::vector<float>& scratch) {
  constexpr int W = A::W;
  const int64_t dp = enc_round_up(D, kEncCols), lp = enc_round_up(L, 2 * W), row = 3 * H * D;
  const int64_t per_head = 3 * L * dp;  // q [L][dp] (scaled), k [L][dp], v [L][dp], zero padded
  const int64_t need = (h1 - h0) * per_head + dp * lp + enc_rows<A>() * lp + 16;  // + 16: alignment
  if (static_cast<int64_t>(scratch.size()) < need) scratch.resize(static_cast<size_t>(need));
  float* buf = scratch.data() + (16 - (reinterpret_cast<uintptr_t>(scratch.data()) / sizeof(float)) % 16) % 16;
  float* kt = buf + (h1 - h0) * per_head;  // [dp][lp] K of the current head, transposed
  float* s = kt + dp * lp;                 // [RB][lp] scores of a block of rows
  for (int64_t i = 0; i < L; ++i) {
    const float* src = qkv + (first + i) * row;
    for (int64_t h = h0; h < h1; ++h) {
      float* __restrict q = buf + (h - h0) * per_head + i * dp;
      float* __restrict k = q + L * dp;
      float* __restrict v = k + L * dp;
      const float* __restrict sq = src + h * D;
      const float* __restrict sk = src + (H + h) * D;
      const float* __restrict sv = src + (2 * H + h) * D;
      for (int64_t d = 0; d < D; ++d) q[d] = sq[d] * scale;
      std::memcpy(k, sk, static_cast<size_t>(D) * sizeof(float));
      std::memcpy(v, sv, static_cast<size_t>(D) * sizeof(float));
      for (int64_t d = D; d < dp; ++d) q[d] = k[d] = v[d] = 0.f;
    }
  }
  for (int64_t h = h0; h < h1; ++h) {
    const float* q = buf + (h - h0) * per_head;
    const float* k = q + L * dp;
    for (int64_t i = 0; i < L; ++i)
      for (int64_t d = 0; d < D; ++d) kt[d * lp + i] = k[i * dp + d];
    for (int64_t d = 0; d < D; ++d)
      for (int64_t i = L; i < lp; ++i) kt[d * lp + i] = 0.f;
    encoder_head<A>(q, kt, k + L * dp, dp, lp, D, L, H, h, first, out, s);
  }
}
