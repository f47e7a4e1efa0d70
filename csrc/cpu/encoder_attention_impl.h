// Bidirectional attention for encoder models (BERT) over packed QKV rows, a sequence's heads at a
// time, written once over an attention vector type A (AttnScalar, AttnAvx2, AttnAvx512).
// Included inside an anonymous namespace by each attention translation unit.
//
// A sequence of an embedding batch is short (tens to a few hundred tokens), so its whole L x L
// score matrix for one head fits in L1/L2 and needs no online softmax: gather Q (pre-scaled), K
// transposed and V into dense scratch, then S = Q K^T as a register-tiled GEMM (4 query rows x
// 2 key vectors: per d, 2 loads + 4 broadcasts + 8 FMAs), exact softmax per row, O = P V (2 rows
// x 32 output columns: per key, 32/W loads + 2 broadcasts + 2 * 32/W FMAs).
// Napkin math, all-MiniLM-L6-v2 (H 12, D 32) at L = 63: 4 L^2 D = 0.51 MFLOP per (sequence,
// head) plus L^2 exps; ~4 us at half the FMA peak of one core, where the paged kernel's tile
// loop (built for long contexts in scattered blocks) took ~20 us.
//
// Every row is computed on its own in a fixed order, so results do not depend on the thread
// count or on the other sequences of the batch.
constexpr int64_t kEncCols = 32;  // output columns per P V register tile (D is padded to it)

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

// Attention of one head whose Q (scaled), K^T and V sit in dense scratch; writes its out rows.
template <class A>
void encoder_head(const float* q, const float* kt, const float* v, int64_t dp, int64_t lp, int64_t D, int64_t L,
                  int64_t H, int64_t h, int64_t first, float* out, float* s) {
  using F = typename A::F;
  constexpr int W = A::W;
  for (int64_t i0 = 0; i0 < L; i0 += 4) {
    const int rb = static_cast<int>(std::min<int64_t>(4, L - i0));
    // scores of rows i0 .. i0 + rb against all keys, two key vectors at a time
    switch (rb) {
      case 4: enc_scores<A, 4>(q + i0 * dp, dp, kt, lp, D, s); break;
      case 3: enc_scores<A, 3>(q + i0 * dp, dp, kt, lp, D, s); break;
      case 2: enc_scores<A, 2>(q + i0 * dp, dp, kt, lp, D, s); break;
      default: enc_scores<A, 1>(q + i0 * dp, dp, kt, lp, D, s); break;
    }
    // exact softmax per row over the L real keys (padding keys get probability 0)
    float inv[4];
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
    // O = P V for the block's rows, two rows at a time, kEncCols output columns per tile
    for (int r0 = 0; r0 < rb; r0 += 2) {
      for (int64_t c0 = 0; c0 < dp; c0 += kEncCols) {
        float* orow[2];
        for (int r = 0; r < 2 && r0 + r < rb; ++r) orow[r] = out + ((first + i0 + r0 + r) * H + h) * D + c0;
        const int64_t ncols = std::min(D, c0 + kEncCols) - c0;
        if (rb - r0 >= 2) enc_pv<A, 2>(s + r0 * lp, lp, v, dp, L, c0, inv + r0, orow, ncols);
        else enc_pv<A, 1>(s + r0 * lp, lp, v, dp, L, c0, inv + r0, orow, ncols);
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
  const int64_t need = (h1 - h0) * per_head + dp * lp + 4 * lp;
  if (static_cast<int64_t>(scratch.size()) < need) scratch.resize(static_cast<size_t>(need));
  float* buf = scratch.data();
  float* kt = buf + (h1 - h0) * per_head;  // [dp][lp] K of the current head, transposed
  float* s = kt + dp * lp;                 // [4][lp] scores of a block of 4 rows
  for (int64_t i = 0; i < L; ++i) {
    const float* src = qkv + (first + i) * row;
    for (int64_t h = h0; h < h1; ++h) {
      float* __restrict q = buf + (h - h0) * per_head + i * dp;
      float* __restrict k = q + L * dp;
      float* __restrict v = k + L * dp;
      const float* __restrict sq = src + h * D;
      for (int64_t d = 0; d < D; ++d) q[d] = sq[d] * scale;
      std::memcpy(k, src + (H + h) * D, static_cast<size_t>(D) * sizeof(float));
      std::memcpy(v, src + (2 * H + h) * D, static_cast<size_t>(D) * sizeof(float));
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
