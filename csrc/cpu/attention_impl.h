// The paged attention inner kernel, written once over an attention vector type A (AttnScalar,
// AttnAvx2, AttnAvx512) and the cache element type. Included inside an anonymous namespace by
// each ISA translation unit after <algorithm>, <cmath>, <limits> and its attn_simd_*.h header.
//
// attend_rows_t walks the keys of one (sequence, kv head) in tiles of kTile positions. For each
// tile it resolves the paged addresses once, then for every group of <= 4 query rows (the GQA
// group of a decode token, or several prefill tokens x the group): scores = q . K (each K row
// loaded once per group and dotted with all of its rows), online-softmax update (running max m,
// sum l, rescale acc by exp(m_old - m_new)), acc += p * V (each V row loaded once per group).
// The tile's K/V (<= 32 x 512 bytes each for D = 128 float32) stays in L1/L2 between groups,
// so DRAM sees each K/V byte once; nothing of size rows x keys is ever materialised.
//
// Napkin math (decode, measured on the 2-vCPU Zen 3 dev VM: ~3.2 GHz, 2 x 8-lane FMA per cycle
// = 6.3 FMA/ns per core, streaming read ~23-26 GB/s for both cores). Per key and kv head the
// kernel reads 2 * D * bytes(dtype) (+ 8 bytes of int8 scales) and issues 2 * G * D / W FMAs
// (W = 8 lanes): the G rows' scores and their p * V sums.
//   7B (Hq 32, Hkv 8, D 128, G 4): 128 FMAs = 20 ns per core; float16 512 B = 41 ns per core at
//   12.5 GB/s per core; fp8/int8 256 B = 20 ns. So float16 is bandwidth bound only if the
//   instruction overhead stays under ~2x the FMAs, and fp8/int8 (same FMAs, half the bytes) are
//   compute bound: their speed-up over float16 is set by instructions per (key, head), not bytes.
//   SmolLM2 (9/3/64, G 3): 48 FMAs = 7.6 ns; float16 256 B = 20 ns: bandwidth bound.
// Instruction counts per (key, kv head), callgrind, 7B float16, S = 1 x 1024 keys (incl. ~35 of
// per-call driver cost): the per-head attend_rows walk 400 (no prefetch of the next tile: every
// tile's DRAM latency exposed), attend_decode below 341 (scores ~100, p * V ~145, softmax ~20,
// prefetch ~10 after unrolling it 4 lines a step); fp8 +~85 (4 instructions per 8 elements to
// convert vs 1 for float16), int8 +~55.
constexpr int kTile = 32;    // key positions per tile
constexpr int kGroup = 4;    // query rows per register group

// s[g][t] = q_g . k_t for g < NG and TK keys t, ..., t + TK - 1 at once: TK x NG independent
// FMA chains hide the FMA latency (one chain per row would wait ~4 cycles per step), and each
// q vector load is shared by the TK keys.
template <class A, KvDType T, int NG, int TK>
inline void scores_step(const float* q, int64_t D, const char* const* kp, int t, float (*s)[kTile]) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  typename A::F acc[TK][NG];
  for (int u = 0; u < TK; ++u)
    for (int g = 0; g < NG; ++g) acc[u][g] = A::zero();
  int64_t d = 0;
  for (; d + A::W <= D; d += A::W) {
    typename A::F kv[TK];
    for (int u = 0; u < TK; ++u) kv[u] = A::template load_kv<T>(kp[t + u] + d * esz);
    for (int g = 0; g < NG; ++g) {
      const typename A::F qv = A::loadw(q + g * D + d);
      for (int u = 0; u < TK; ++u) acc[u][g] = A::fma(qv, kv[u], acc[u][g]);
    }
  }
  for (int u = 0; u < TK; ++u) {
    float tail[NG] = {};
    for (int64_t dd = d; dd < D; ++dd) {
      const float kv = AttnScalar::load_kv<T>(kp[t + u] + dd * esz);
      for (int g = 0; g < NG; ++g) tail[g] += q[g * D + dd] * kv;
    }
    float sums[4];
    A::hsum4(acc[u][0], NG > 1 ? acc[u][NG > 1 ? 1 : 0] : A::zero(), NG > 2 ? acc[u][NG > 2 ? 2 : 0] : A::zero(),
             NG > 3 ? acc[u][NG > 3 ? 3 : 0] : A::zero(), sums);
    for (int g = 0; g < NG; ++g) s[g][t + u] = sums[g] + tail[g];
  }
}

template <class A, KvDType T, int NG>
inline void scores_group(const float* q, int64_t D, const char* const* kp, int t0, int t1, float (*s)[kTile]) {
  constexpr int TK = NG == 1 ? 4 : 2;
  int t = t0;
  for (; t + TK <= t1; t += TK) scores_step<A, T, NG, TK>(q, D, kp, t, s);
  for (; t < t1; ++t) scores_step<A, T, NG, 1>(q, D, kp, t, s);
}

// acc_g[d0, d0 + P W) = acc_g * alpha_g + sum_t p[g][t] * v_t: NG x P accumulators stay in
// registers over the tile, so each p is broadcast once per panel, not once per vector.
template <class A, KvDType T, int NG, int P>
inline void accumulate_panel(float* acc, const float* alpha, int64_t D, int64_t d0, const char* const* vp, int t0,
                             int t1, const float (*p)[kTile]) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  typename A::F a[NG][P];
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < P; ++j) a[g][j] = A::mul(A::loadw(acc + g * D + d0 + j * A::W), A::set1(alpha[g]));
  for (int t = t0; t < t1; ++t) {
    typename A::F pb[NG];
    for (int g = 0; g < NG; ++g) pb[g] = A::set1(p[g][t]);
    const char* v = vp[t] + d0 * esz;
    for (int j = 0; j < P; ++j) {
      const typename A::F vv = A::template load_kv<T>(v + j * A::W * esz);
      for (int g = 0; g < NG; ++g) a[g][j] = A::fma(pb[g], vv, a[g][j]);
    }
  }
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < P; ++j) A::storew(acc + g * D + d0 + j * A::W, a[g][j]);
}

template <class A, KvDType T, int NG>
inline void accumulate_group(float* acc, const float* alpha, int64_t D, const char* const* vp, int t0, int t1,
                             const float (*p)[kTile]) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  // NG x P accumulators + NG broadcasts + 1 load fit the 16 vector registers of AVX2.
  constexpr int P = NG == 1 ? 8 : NG == 2 ? 5 : NG == 3 ? 4 : 2;
  int64_t d = 0;
  for (; d + P * A::W <= D; d += P * A::W) accumulate_panel<A, T, NG, P>(acc, alpha, D, d, vp, t0, t1, p);
  for (; d + A::W <= D; d += A::W) accumulate_panel<A, T, NG, 1>(acc, alpha, D, d, vp, t0, t1, p);
  for (; d < D; ++d) {
    for (int g = 0; g < NG; ++g) {
      float a = acc[g * D + d] * alpha[g];
      for (int t = t0; t < t1; ++t) a += p[g][t] * AttnScalar::load_kv<T>(vp[t] + d * esz);
      acc[g * D + d] = a;
    }
  }
}

// One group of NG rows against one tile of keys [tb, tb + n) (absolute positions).
template <class A, KvDType T, int NG>
inline void tile_group(const AttnRows& r, int64_t r0, int64_t D, int64_t tb, int n, const char* const* kp,
                       const char* const* vp, const float* ks, const float* vs) {
  int lo[NG], hi[NG];
  int t0 = n, t1 = 0;
  for (int g = 0; g < NG; ++g) {
    lo[g] = static_cast<int>(std::max<int64_t>(r.lo[r0 + g] - tb, 0));
    hi[g] = static_cast<int>(std::min<int64_t>(r.hi[r0 + g] - tb, n));
    if (lo[g] < hi[g]) {
      t0 = std::min(t0, lo[g]);
      t1 = std::max(t1, hi[g]);
    }
  }
  if (t0 >= t1) return;  // no row of this group sees any key of the tile
  float s[NG][kTile] = {};
  scores_group<A, T, NG>(r.q + r0 * D, D, kp, t0, t1, s);
  float alpha[NG];
  for (int g = 0; g < NG; ++g) {
    float* sg = s[g];
    float& m = r.m[r0 + g];
    float& l = r.l[r0 + g];
    if (lo[g] >= hi[g]) {  // this row sees nothing here: leave its state alone
      alpha[g] = 1.f;
      for (int t = t0; t < t1; ++t) sg[t] = 0.f;
      continue;
    }
    if (lo[g] == 0 && hi[g] == kTile) {  // the row sees the whole tile (most tiles): all in vectors
      typename A::F mx = A::set1(-std::numeric_limits<float>::infinity());
      for (int t = 0; t < kTile; t += A::W) {
        typename A::F v = A::loadw(sg + t);
        if (ks != nullptr) {
          v = A::mul(v, A::loadw(ks + t));
          A::storew(sg + t, v);
        }
        mx = A::max(mx, v);
      }
      const float m_new = std::max(m, A::hmax(mx));
      alpha[g] = std::exp(m - m_new);
      const typename A::F mv = A::set1(m_new);
      typename A::F sum = A::zero();
      for (int t = 0; t < kTile; t += A::W) {
        typename A::F e = A::exp(A::sub(A::loadw(sg + t), mv));
        sum = A::add(sum, e);
        if (vs != nullptr) e = A::mul(e, A::loadw(vs + t));
        A::storew(sg + t, e);
      }
      l = l * alpha[g] + A::hsum(sum);
      m = m_new;
      continue;
    }
    if (ks != nullptr)
      for (int t = lo[g]; t < hi[g]; ++t) sg[t] *= ks[t];
    float mt = -std::numeric_limits<float>::infinity();
    for (int t = lo[g]; t < hi[g]; ++t) mt = std::max(mt, sg[t]);
    const float m_new = std::max(m, mt);
    alpha[g] = std::exp(m - m_new);  // exp(-inf) = 0 on the first tile
    // Whole vectors over the tile (kTile is a multiple of every W); entries outside [t0, t1)
    // are zeros from the initialisation and are masked below.
    const typename A::F mv = A::set1(m_new);
    for (int t = 0; t < kTile; t += A::W) A::storew(sg + t, A::exp(A::sub(A::loadw(sg + t), mv)));
    float sum = 0.f;
    for (int t = t0; t < t1; ++t) {
      const float p = (t >= lo[g] && t < hi[g]) ? sg[t] : 0.f;
      sum += p;
      sg[t] = vs != nullptr ? p * vs[t] : p;
    }
    l = l * alpha[g] + sum;
    m = m_new;
  }
  accumulate_group<A, T, NG>(r.acc + r0 * D, alpha, D, vp, t0, t1, s);
}

template <class A, KvDType T>
void attend_rows_t(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke, const AttnRows& r) {
  const int64_t D = c.head_dim, bs = c.block_size;
  const int64_t esz = kv_dtype_size(T);
  const int64_t tok_stride = c.num_kv_heads * D * esz;  // bytes between consecutive tokens of a block
  const char* kbase = static_cast<const char*>(c.k) + h * D * esz;
  const char* vbase = static_cast<const char*>(c.v) + h * D * esz;
  // Two pointer tables: while one tile is computed, the next one's rows are prefetched (its
  // blocks sit at random places, so the hardware prefetcher cannot guess them).
  const char* kp_buf[2][kTile];
  const char* vp_buf[2][kTile];
  float ks_buf[2][kTile], vs_buf[2][kTile];
  const bool scaled = T == KvDType::kInt8;
  const int64_t row_bytes = D * esz;
  auto resolve = [&](int64_t tb, int which) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, ke - tb));
    int64_t blk = tb / bs, off = tb % bs;  // one division per tile, not per token
    for (int t = 0; t < n; ++t, ++off) {
      if (off == bs) {
        off = 0;
        ++blk;
      }
      const int64_t slot = static_cast<int64_t>(bt[blk]) * bs + off;
      const char* k = kbase + slot * tok_stride;
      const char* v = vbase + slot * tok_stride;
      kp_buf[which][t] = k;
      vp_buf[which][t] = v;
      for (int64_t b = 0; b < row_bytes; b += 64) {
        __builtin_prefetch(k + b);
        __builtin_prefetch(v + b);
      }
      if (scaled) {
        ks_buf[which][t] = c.k_scales[slot * c.num_kv_heads + h];
        vs_buf[which][t] = c.v_scales[slot * c.num_kv_heads + h];
      }
    }
  };
  auto prefetch_tile = [&](int64_t tb) {
    const int64_t end = std::min<int64_t>(ke, tb + kTile);
    int64_t blk = tb / bs, off = tb % bs;
    for (int64_t pos = tb; pos < end; ++pos, ++off) {
      if (off == bs) {
        off = 0;
        ++blk;
      }
      const int64_t at = (static_cast<int64_t>(bt[blk]) * bs + off) * tok_stride;
      for (int64_t b = 0; b < row_bytes; b += 64) {
        __builtin_prefetch(kbase + at + b);
        __builtin_prefetch(vbase + at + b);
      }
    }
  };
  if (kb < ke) resolve(kb, 0);
  if (kb + kTile < ke) prefetch_tile(kb + kTile);
  int cur = 0;
  for (int64_t tb = kb; tb < ke; tb += kTile, cur ^= 1) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, ke - tb));
    if (tb + kTile < ke) resolve(tb + kTile, cur ^ 1);
    if (tb + 2 * kTile < ke) prefetch_tile(tb + 2 * kTile);  // two tiles of lead: 0-10% faster
    const char* const* kp = kp_buf[cur];
    const char* const* vp = vp_buf[cur];
    const float* ks = ks_buf[cur];
    const float* vs = vs_buf[cur];
    for (int64_t r0 = 0; r0 < r.rows; r0 += kGroup) {
      const float* ksp = scaled ? ks : nullptr;
      const float* vsp = scaled ? vs : nullptr;
      switch (std::min<int64_t>(kGroup, r.rows - r0)) {
        case 4: tile_group<A, T, 4>(r, r0, D, tb, n, kp, vp, ksp, vsp); break;
        case 3: tile_group<A, T, 3>(r, r0, D, tb, n, kp, vp, ksp, vsp); break;
        case 2: tile_group<A, T, 2>(r, r0, D, tb, n, kp, vp, ksp, vsp); break;
        default: tile_group<A, T, 1>(r, r0, D, tb, n, kp, vp, ksp, vsp); break;
      }
    }
  }
}

// ------------------------------------------------------------------------------------ decode
// attend_decode_t: one decode token (all Hq rows) against keys [kb, ke) of one sequence, every
// kv head per tile, so each tile of token rows (all heads adjacent in NHD) is fetched once and
// used while it is in L1/L2, and the next tile is prefetched in slices between the heads.
// Every row sees every key of the range, so the tile kernel needs no per-row masking: scores
// go to a token-major buffer s[t * SL + g] (SL slots per token), straight from hsum4's four
// sums, and the softmax runs over the flat buffer in whole vectors (one exp per W scores).
constexpr int kDecodeTile = 32;

template <int NG>
constexpr int decode_slots() { return NG == 1 ? 1 : NG == 2 ? 2 : 4; }

// s[(t + u) * SL + g] = q_g . k_{t+u} for u < TK, g < NG. TK * SL == 4 (or TK == 1): hsum4's
// four results land contiguously (for TK == 1 and NG <= 2 past this token's slots, into the
// next token's, which are written later or are padding).
template <class A, KvDType T, int NG, int TK>
inline void decode_scores_step(const float* q, int64_t D, const char* const* kp, int t, float* s) {
  constexpr int SL = decode_slots<NG>();
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  typename A::F acc[TK][NG];
  for (int u = 0; u < TK; ++u)
    for (int g = 0; g < NG; ++g) acc[u][g] = A::zero();
  int64_t d = 0;
#pragma GCC unroll 2
  for (; d + A::W <= D; d += A::W) {
    typename A::F kv[TK];
    for (int u = 0; u < TK; ++u) kv[u] = A::template load_kv<T>(kp[t + u] + d * esz);
    for (int g = 0; g < NG; ++g) {
      const typename A::F qv = A::loadw(q + g * D + d);
      for (int u = 0; u < TK; ++u) acc[u][g] = A::fma(qv, kv[u], acc[u][g]);
    }
  }
  const typename A::F z = A::zero();
  if constexpr (NG == 1 && TK == 4) {
    A::hsum4(acc[0][0], acc[1][0], acc[2][0], acc[3][0], s + t * SL);
  } else if constexpr (NG == 2 && TK == 2) {
    A::hsum4(acc[0][0], acc[0][1], acc[1][0], acc[1][1], s + t * SL);
  } else {
    for (int u = 0; u < TK; ++u)
      A::hsum4(acc[u][0], NG > 1 ? acc[u][NG > 1 ? 1 : 0] : z, NG > 2 ? acc[u][NG > 2 ? 2 : 0] : z,
               NG > 3 ? acc[u][NG > 3 ? 3 : 0] : z, s + (t + u) * SL);
  }
  if (d < D) {  // D not a multiple of W
    for (int u = 0; u < TK; ++u)
      for (int64_t dd = d; dd < D; ++dd) {
        const float kv = AttnScalar::load_kv<T>(kp[t + u] + dd * esz);
        for (int g = 0; g < NG; ++g) s[(t + u) * SL + g] += q[g * D + dd] * kv;
      }
  }
}


// acc_g = acc_g * alpha_g + sum_{t < n} p[t * SL + g] * v_t, in panels of P vectors (NG x P
// accumulators + NG broadcasts + 1 V vector fit the 16 registers of AVX2).
template <class A, KvDType T, int NG, int SL, int P>
inline void decode_panel(float* acc, const float* alpha, int64_t D, int64_t d0, const char* const* vp, int n,
                         const float* p) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  typename A::F a[NG][P];
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < P; ++j) a[g][j] = A::mul(A::loadw(acc + g * D + d0 + j * A::W), A::set1(alpha[g]));
  for (int t = 0; t < n; ++t) {
    typename A::F pb[NG];
    for (int g = 0; g < NG; ++g) pb[g] = A::set1(p[t * SL + g]);
    const char* v = vp[t] + d0 * esz;
    for (int j = 0; j < P; ++j) {
      const typename A::F vv = A::template load_kv<T>(v + j * A::W * esz);
      for (int g = 0; g < NG; ++g) a[g][j] = A::fma(pb[g], vv, a[g][j]);
    }
  }
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < P; ++j) A::storew(acc + g * D + d0 + j * A::W, a[g][j]);
}

template <class A, KvDType T, int NG, int SL>
inline void decode_accumulate(float* acc, const float* alpha, int64_t D, const char* const* vp, int n,
                              const float* p) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  constexpr int P = NG == 1 ? 8 : NG == 2 ? 5 : NG == 3 ? 4 : 2;
  int64_t d = 0;
  for (; d + P * A::W <= D; d += P * A::W) decode_panel<A, T, NG, SL, P>(acc, alpha, D, d, vp, n, p);
  for (; d + A::W <= D; d += A::W) decode_panel<A, T, NG, SL, 1>(acc, alpha, D, d, vp, n, p);
  for (; d < D; ++d)
    for (int g = 0; g < NG; ++g) {
      float a = acc[g * D + d] * alpha[g];
      for (int t = 0; t < n; ++t) a += p[t * SL + g] * AttnScalar::load_kv<T>(vp[t] + d * esz);
      acc[g * D + d] = a;
    }
}

// One group of NG <= 4 rows of one kv head against n <= kDecodeTile keys (kp/vp: the keys' rows
// for this head; ks/vs: int8 per-key scales, else null).
template <class A, KvDType T, int NG>
inline void decode_group(const float* q, float* acc, float* m, float* l, int64_t D, const char* const* kp,
                         const char* const* vp, const float* ks, const float* vs, int n) {
  constexpr int SL = decode_slots<NG>();
  constexpr int TK = 4 / SL;
  constexpr int kN = kDecodeTile * SL;  // flat scores of a tile (a multiple of every W)
  alignas(64) float s[kN + 4];
  int t = 0;
  for (; t + TK <= n; t += TK) decode_scores_step<A, T, NG, TK>(q, D, kp, t, s);
  for (; t < n; ++t) decode_scores_step<A, T, NG, 1>(q, D, kp, t, s);
  if (ks != nullptr)
    for (int u = 0; u < n; ++u)
      for (int g = 0; g < SL; ++g) s[u * SL + g] *= ks[u];
  // Padding keys: -inf, so they cannot raise the max; their probabilities are zeroed below.
  for (int i = n * SL; i < kN; ++i) s[i] = -std::numeric_limits<float>::infinity();

  // Row maxima: NA vector accumulators (more than one only when W < SL, i.e. scalar code),
  // lane j of accumulator a holding slot (a * W + j) % SL.
  constexpr int NA = A::W >= SL ? 1 : SL / A::W;
  typename A::F mx[NA];
  for (int a = 0; a < NA; ++a) mx[a] = A::set1(-std::numeric_limits<float>::infinity());
  for (int i = 0; i < kN; i += NA * A::W)
    for (int a = 0; a < NA; ++a) mx[a] = A::max(mx[a], A::loadw(s + i + a * A::W));
  alignas(64) float lanes[NA * A::W > 4 ? NA * A::W : 4];
  for (int a = 0; a < NA; ++a) A::storew(lanes + a * A::W, mx[a]);
  float mt[SL];
  for (int g = 0; g < SL; ++g) mt[g] = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < NA * A::W; ++j) mt[j % SL] = std::max(mt[j % SL], lanes[j]);
  // pat[j] = the new max of slot j % SL, so the vector at flat index i (i % SL == 0 when W >= SL)
  // or at pat + i % SL (scalar) subtracts each score's own row max.
  alignas(64) float pat[(A::W > 4 ? A::W : 4) + 4];
  float alpha[4] = {1.f, 1.f, 1.f, 1.f};
  for (int g = 0; g < SL; ++g) {
    const float mo = g < NG ? m[g] : 0.f;
    const float mn = std::max(mo, mt[g]);  // finite: n >= 1 real keys
    if (g < NG) {
      alpha[g] = std::exp(mo - mn);  // 0 on the first tile (mo = -inf)
      m[g] = mn;
    }
    pat[g] = mn;
  }
  for (int j = SL; j < static_cast<int>(sizeof(pat) / sizeof(float)); ++j) pat[j] = pat[j % SL];
  typename A::F sum[NA];
  for (int a = 0; a < NA; ++a) sum[a] = A::zero();
  for (int i = 0; i < kN; i += NA * A::W)
    for (int a = 0; a < NA; ++a) {
      const int at = i + a * A::W;
      const typename A::F e = A::exp(A::sub(A::loadw(s + at), A::loadw(pat + at % SL)));
      A::storew(s + at, e);
    }
  for (int i = n * SL; i < kN; ++i) s[i] = 0.f;  // A::exp clamps, so exp(-inf) is not exactly 0
  for (int i = 0; i < kN; i += NA * A::W)
    for (int a = 0; a < NA; ++a) sum[a] = A::add(sum[a], A::loadw(s + i + a * A::W));
  for (int a = 0; a < NA; ++a) A::storew(lanes + a * A::W, sum[a]);
  float rs[SL] = {};
  for (int j = 0; j < NA * A::W; ++j) rs[j % SL] += lanes[j];
  for (int g = 0; g < NG; ++g) l[g] = l[g] * alpha[g] + rs[g];
  if (vs != nullptr)
    for (int u = 0; u < n; ++u)
      for (int g = 0; g < SL; ++g) s[u * SL + g] *= vs[u];
  decode_accumulate<A, T, NG, SL>(acc, alpha, D, vp, n, s);
}

// Software prefetch of a tile's token rows: contiguous byte ranges (a run of keys inside one
// block is one range: Hkv x D elements per key), issued a slice at a time between the heads.
struct PrefetchRanges {
  static constexpr int kMax = 4 * (kDecodeTile + 1);  // K, V (+ int8 scales) x runs of a tile
  const char* at[kMax];
  const char* end[kMax];
  int n = 0, i = 0;
  void clear() { n = i = 0; }
  void add(const char* p, int64_t bytes) {
    const char* lo = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63});
    at[n] = lo;
    end[n++] = p + bytes;
  }
  void issue(int64_t lines) {  // the next `lines` cache lines, rounded up to 4 (all of them for lines < 0)
    if (lines < 0) lines = std::numeric_limits<int64_t>::max();
    for (; i < n; ++i) {
      const char* p = at[i];
      for (; p + 256 <= end[i] && lines > 0; p += 256, lines -= 4) {  // 4 lines a step: ~1.5 instructions each
        __builtin_prefetch(p);
        __builtin_prefetch(p + 64);
        __builtin_prefetch(p + 128);
        __builtin_prefetch(p + 192);
      }
      for (; p < end[i] && lines > 0; p += 64, --lines) __builtin_prefetch(p);
      at[i] = p;
      if (p < end[i]) return;  // budget spent inside this range
    }
  }
  int64_t lines() const {
    int64_t t = 0;
    for (int j = i; j < n; ++j) t += (end[j] - at[j] + 63) / 64;
    return t;
  }
};

template <class A, KvDType T>
void attend_decode_t(const KvCacheView& c, const int32_t* bt, int64_t kb, int64_t ke, const DecodeRows& r) {
  const int64_t H = c.num_kv_heads, D = c.head_dim, bs = c.block_size, G = r.num_heads / H;
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  const int64_t row_bytes = D * esz, tok_stride = H * row_bytes;
  const char* kbase = static_cast<const char*>(c.k);
  const char* vbase = static_cast<const char*>(c.v);
  const bool scaled = T == KvDType::kInt8;
  int64_t slot[kDecodeTile];
  const char* kp[kDecodeTile];
  const char* vp[kDecodeTile];
  float ks[kDecodeTile], vs[kDecodeTile];
  PrefetchRanges pf;
  // The ranges of keys [tb, tb + n): runs of consecutive slots inside one block.
  auto plan_prefetch = [&](int64_t tb) {
    pf.clear();
    const int64_t te = std::min(ke, tb + kDecodeTile);
    for (int64_t pos = tb; pos < te;) {
      const int64_t blk = pos / bs, off = pos % bs, run = std::min(te - pos, bs - off);
      const int64_t first = static_cast<int64_t>(bt[blk]) * bs + off;
      pf.add(kbase + first * tok_stride, run * tok_stride);
      pf.add(vbase + first * tok_stride, run * tok_stride);
      if (scaled) {
        pf.add(reinterpret_cast<const char*>(c.k_scales + first * H), run * H * 4);
        pf.add(reinterpret_cast<const char*>(c.v_scales + first * H), run * H * 4);
      }
      pos += run;
    }
  };
  if (kb < ke) {
    plan_prefetch(kb);
    pf.issue(-1);
  }
  for (int64_t tb = kb; tb < ke; tb += kDecodeTile) {
    const int n = static_cast<int>(std::min<int64_t>(kDecodeTile, ke - tb));
    int64_t blk = tb / bs, off = tb % bs;  // one division per tile, not per key
    for (int t = 0; t < n; ++t, ++off) {
      if (off == bs) {
        off = 0;
        ++blk;
      }
      slot[t] = static_cast<int64_t>(bt[blk]) * bs + off;
    }
    if (tb + kDecodeTile < ke) plan_prefetch(tb + kDecodeTile);
    else pf.clear();
    const int64_t per_head = (pf.lines() + H - 1) / H;
    for (int64_t h = 0; h < H; ++h) {
      pf.issue(per_head);
      for (int t = 0; t < n; ++t) {
        const int64_t at = slot[t] * tok_stride + h * row_bytes;
        kp[t] = kbase + at;
        vp[t] = vbase + at;
        if (scaled) {
          ks[t] = c.k_scales[slot[t] * H + h];
          vs[t] = c.v_scales[slot[t] * H + h];
        }
      }
      const float* ksp = scaled ? ks : nullptr;
      const float* vsp = scaled ? vs : nullptr;
      for (int64_t g0 = 0; g0 < G; g0 += kGroup) {
        const int64_t row = h * G + g0;
        const float* q = r.q + row * D;
        float* acc = r.acc + row * D;
        float* m = r.m + row;
        float* l = r.l + row;
        switch (std::min<int64_t>(kGroup, G - g0)) {
          case 4: decode_group<A, T, 4>(q, acc, m, l, D, kp, vp, ksp, vsp, n); break;
          case 3: decode_group<A, T, 3>(q, acc, m, l, D, kp, vp, ksp, vsp, n); break;
          case 2: decode_group<A, T, 2>(q, acc, m, l, D, kp, vp, ksp, vsp, n); break;
          default: decode_group<A, T, 1>(q, acc, m, l, D, kp, vp, ksp, vsp, n); break;
        }
      }
    }
  }
}

template <class A>
void attend_decode_dispatch(const KvCacheView& c, const int32_t* bt, int64_t kb, int64_t ke, const DecodeRows& r) {
  switch (c.dtype) {
    case KvDType::kFloat32: attend_decode_t<A, KvDType::kFloat32>(c, bt, kb, ke, r); break;
    case KvDType::kFloat16: attend_decode_t<A, KvDType::kFloat16>(c, bt, kb, ke, r); break;
    case KvDType::kBFloat16: attend_decode_t<A, KvDType::kBFloat16>(c, bt, kb, ke, r); break;
    case KvDType::kFp8E4m3: attend_decode_t<A, KvDType::kFp8E4m3>(c, bt, kb, ke, r); break;
    case KvDType::kInt8: attend_decode_t<A, KvDType::kInt8>(c, bt, kb, ke, r); break;
  }
}

template <class A>
void attend_rows_dispatch(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke,
                          const AttnRows& r) {
  switch (c.dtype) {
    case KvDType::kFloat32: attend_rows_t<A, KvDType::kFloat32>(c, bt, h, kb, ke, r); break;
    case KvDType::kFloat16: attend_rows_t<A, KvDType::kFloat16>(c, bt, h, kb, ke, r); break;
    case KvDType::kBFloat16: attend_rows_t<A, KvDType::kBFloat16>(c, bt, h, kb, ke, r); break;
    case KvDType::kFp8E4m3: attend_rows_t<A, KvDType::kFp8E4m3>(c, bt, h, kb, ke, r); break;
    case KvDType::kInt8: attend_rows_t<A, KvDType::kInt8>(c, bt, h, kb, ke, r); break;
  }
}
