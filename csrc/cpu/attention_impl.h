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
// Napkin math (decode): per token of context and kv head, read 2 * D * bytes(dtype) (+ 8 bytes
// of scales for int8) and do 4 * G * D flops (G = Hq / Hkv). SmolLM2 (Hkv 3, D 64) float16:
// 768 B per token per layer; S = 16 sequences x 4096 tokens = 50 MB per call: ~1.6 ms at the
// 31 GB/s two-core DRAM limit, against 16 * 4096 * 3 * (3 * 64 * 2) = 75 M lane-FMAs = ~0.8 ms of FMA
// issue (2 cores x 2 x 8-lane FMA / cycle at 3 GHz). So the bound is DRAM bandwidth in
// principle, with fp8/int8 (half the bytes) up to 2x faster. Measured on the shared 2-vCPU dev
// VM (Zen 3) it is not there: in cache one (token, kv head) of SmolLM2 float16 costs ~24 ns
// (~75 cycles: K dots ~1/3, V accumulation ~1/3, softmax, prefetch and horizontal sums the
// rest; fp8 ~31 ns, int8 ~33 ns), 3x the FMA bound. Out of cache the shuffled blocks of the
// benchmark read at ~9-10 GB/s against ~20 GB/s for the same kernel on an identity block table
// and ~25 GB/s for a streaming read: every 2-6 KiB block starts a new DRAM stream that neither
// the hardware prefetcher nor more software prefetch (tried: whole-row, spread, deeper, none;
// also 2 MiB pages) brings closer. Larger blocks may help (block_size 64, one kv head: 17 GB/s
// in one run, 10.6 in another under load).
constexpr int kTile = kAttnTile;  // key positions per tile (32)
constexpr int kGroup = 4;    // query rows per register group

// s[g][t] = q_g . k_t for g < NG and TK keys t, ..., t + TK - 1 at once: TK x NG independent
// FMA chains hide the FMA latency (one chain per row would wait ~4 cycles per step), and each
// K vector is converted once for the NG rows. The horizontal sums go four at a time (hsum4):
// with TK = 4 they are the four keys of one row, stored as one vector; with TK < 4 the rows of
// one key. hsum4 adds every slot in the same order, so a row's score does not depend on how
// the rows were grouped (decode and one-token prefill stay bit-equal).
template <class A, KvDType T, int NG, int TK>
inline void scores_step(const float* q, int64_t D, const char* const* kp, int t, float (*s)[kTile]) {
  constexpr int64_t esz = T == KvDType::kFloat32 ? 4 : (T == KvDType::kFloat16 || T == KvDType::kBFloat16) ? 2 : 1;
  typename A::F acc[TK][NG];
  for (int u = 0; u < TK; ++u)
    for (int g = 0; g < NG; ++g) acc[u][g] = A::zero();
  int64_t d = 0;
  for (; d + A::W <= D; d += A::W) {
    for (int u = 0; u < TK; ++u) {
      const typename A::F kv = A::template load_kv<T>(kp[t + u] + d * esz);
      for (int g = 0; g < NG; ++g) acc[u][g] = A::fma(A::loadw(q + g * D + d), kv, acc[u][g]);
    }
  }
  if constexpr (TK == 4) {
    for (int g = 0; g < NG; ++g) A::hsum4(acc[0][g], acc[1][g], acc[2][g], acc[3][g], s[g] + t);
  } else {
    for (int u = 0; u < TK; ++u) {
      float sums[4];
      A::hsum4(acc[u][0], acc[u][NG > 1 ? 1 : 0], acc[u][NG > 2 ? 2 : 0], acc[u][NG > 3 ? 3 : 0], sums);
      for (int g = 0; g < NG; ++g) s[g][t + u] = sums[g];
    }
  }
  if (d < D) {  // head sizes that are not a multiple of the vector width
    for (int u = 0; u < TK; ++u) {
      float tail[NG] = {};
      for (int64_t dd = d; dd < D; ++dd) {
        const float kv = AttnScalar::load_kv<T>(kp[t + u] + dd * esz);
        for (int g = 0; g < NG; ++g) tail[g] += q[g * D + dd] * kv;
      }
      for (int g = 0; g < NG; ++g) s[g][t + u] += tail[g];
    }
  }
}

// Four keys per step while they last (NG x 4 accumulators: 12 for a GQA group of 3), then two
// and one; NG = 4 takes two keys per step (8 accumulators + 4 query rows in 16 AVX2 registers).
template <class A, KvDType T, int NG>
inline void scores_group(const float* q, int64_t D, const char* const* kp, int t0, int t1, float (*s)[kTile]) {
  constexpr int TK = NG == 4 ? 2 : 4;
  int t = t0;
  for (; t + TK <= t1; t += TK) scores_step<A, T, NG, TK>(q, D, kp, t, s);
  if constexpr (TK == 4)
    for (; t + 2 <= t1; t += 2) scores_step<A, T, NG, 2>(q, D, kp, t, s);
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

// int8 caches on a level with integer dot products (A::kInt8Dots: int16 q x int8 k, uint8 p x
// int8 v) and fp8 caches on one with float16 arithmetic (A::kFp8Dots): the level's own
// prepare_rows / scores_lowp / accumulate_lowp instead of widening every cached value to float32.
// (bfloat16 dots for fp8, vdpbf16ps on values converted through byte tables, measured ~20%
// slower than the float kernel on the dev machine: vdpbf16ps issues at ~0.7 of the FMA rate.)
template <class A, KvDType T>
constexpr bool kLowpDots = (A::kInt8Dots && T == KvDType::kInt8) || (A::kFp8Dots && T == KvDType::kFp8E4m3);

// One group of NG rows against one tile of keys [tb, tb + n) (absolute positions).
template <class A, KvDType T, int NG>
inline void tile_group(const AttnRows& r, int64_t r0, int64_t D, int64_t tb, int n, const char* const* kp,
                       const char* const* vp, const float* ks, const float* vs, const LowpRows& qi) {
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
  float s[NG][kTile];
  // Partial tiles run the vector exp over the whole tile: zero what scores_group leaves unset.
  if (t0 != 0 || t1 != kTile) std::fill(&s[0][0], &s[0][0] + NG * kTile, 0.f);
  // The integer kernels work on whole halves of the tile: keys [T0, T1) (pointers past the
  // tile's end repeat its last row; their weights are zeroed below).
  const int T0 = t0 & ~15, T1 = (t1 + 15) & ~15;
  if constexpr (kLowpDots<A, T>) {
    A::template scores_lowp<NG>(qi, r0, D, kp, T0, T1, s);
  } else {
    scores_group<A, T, NG>(r.q + r0 * D, D, kp, t0, t1, s);
  }
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
      // The running max rarely grows after the first tiles: skip the scalar exp (exp(0) = 1 exactly).
      alpha[g] = m_new == m ? 1.f : std::exp(m - m_new);
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
  if constexpr (kLowpDots<A, T>) {
    for (int g = 0; g < NG; ++g) {
      const int lo_g = std::max(lo[g], t0), hi_g = std::max(std::min(hi[g], t1), lo_g);
      for (int t = T0; t < lo_g; ++t) s[g][t] = 0.f;
      for (int t = hi_g; t < T1; ++t) s[g][t] = 0.f;
    }
    A::template accumulate_lowp<NG>(r.acc + r0 * D, alpha, D, vp, T0, T1, s);
  } else {
    accumulate_group<A, T, NG>(r.acc + r0 * D, alpha, D, vp, t0, t1, s);
  }
}

template <class A, KvDType T>
void attend_rows_t(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke, const AttnRows& r) {
  const int64_t D = c.head_dim, bs = c.block_size;
  const int64_t esz = kv_dtype_size(T);
  const int64_t tok_stride = c.num_kv_heads * D * esz;  // bytes between consecutive tokens of a block
  const char* kbase = static_cast<const char*>(c.k) + h * D * esz;
  const char* vbase = static_cast<const char*>(c.v) + h * D * esz;
  // Two pointer tables: the next tile's row addresses are resolved while one tile is computed.
  // Blocks sit at random places, so the hardware prefetcher cannot guess them: prefetch_tile
  // asks for every row two tiles ahead (a second prefetch one tile ahead measured no better
  // out of cache and cost ~8% in cache).
  const char* kp_buf[2][kTile];
  const char* vp_buf[2][kTile];
  float ks_buf[2][kTile], vs_buf[2][kTile];
  const bool scaled = T == KvDType::kInt8;
  const int64_t row_bytes = D * esz;
  auto resolve = [&](int64_t tb, int which) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, ke - tb));
    int64_t blk = tb / bs, off = tb % bs;  // one division per tile, not per token
    // A run of consecutive slots per block: rows at a fixed stride (one table lookup per block).
    for (int t = 0; t < n; ++blk, off = 0) {
      const int run = static_cast<int>(std::min<int64_t>(n - t, bs - off));
      const int64_t slot = static_cast<int64_t>(bt[blk]) * bs + off;
      const char* k = kbase + slot * tok_stride;
      const char* v = vbase + slot * tok_stride;
      for (int i = 0; i < run; ++i) {
        kp_buf[which][t + i] = k + i * tok_stride;
        vp_buf[which][t + i] = v + i * tok_stride;
      }
      if (scaled) {
        const float* ksrc = c.k_scales + slot * c.num_kv_heads + h;
        const float* vsrc = c.v_scales + slot * c.num_kv_heads + h;
        for (int i = 0; i < run; ++i) {
          ks_buf[which][t + i] = ksrc[i * c.num_kv_heads];
          vs_buf[which][t + i] = vsrc[i * c.num_kv_heads];
        }
      }
      t += run;
    }
    if constexpr (kLowpDots<A, T>) {  // whole 16-key halves: valid rows with zero weight past the end
      for (int t = n; t < kTile; ++t) {
        kp_buf[which][t] = kp_buf[which][n - 1];
        vp_buf[which][t] = vp_buf[which][n - 1];
        ks_buf[which][t] = 0.f;
        vs_buf[which][t] = 0.f;
      }
    }
  };
  auto prefetch_tile = [&](int64_t tb) {
    const int n = static_cast<int>(std::min<int64_t>(kTile, ke - tb));
    int64_t blk = tb / bs, off = tb % bs;
    for (int t = 0; t < n; ++blk, off = 0) {
      const int run = static_cast<int>(std::min<int64_t>(n - t, bs - off));
      const int64_t at = (static_cast<int64_t>(bt[blk]) * bs + off) * tok_stride;
      for (int i = 0; i < run; ++i)
        for (int64_t b = 0; b < row_bytes; b += 64) {
          __builtin_prefetch(kbase + at + i * tok_stride + b);
          __builtin_prefetch(vbase + at + i * tok_stride + b);
        }
      t += run;
    }
  };
  // Each tile's rows are prefetched once, two tiles ahead of their use (the first two here).
  if (kb < ke) prefetch_tile(kb);
  if (kb + kTile < ke) prefetch_tile(kb + kTile);
  if (kb < ke) resolve(kb, 0);
  LowpRows qi;
  if constexpr (kLowpDots<A, T>) qi = A::prepare_rows(r.q, r.rows, D);
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
        case 4: tile_group<A, T, 4>(r, r0, D, tb, n, kp, vp, ksp, vsp, qi); break;
        case 3: tile_group<A, T, 3>(r, r0, D, tb, n, kp, vp, ksp, vsp, qi); break;
        case 2: tile_group<A, T, 2>(r, r0, D, tb, n, kp, vp, ksp, vsp, qi); break;
        default: tile_group<A, T, 1>(r, r0, D, tb, n, kp, vp, ksp, vsp, qi); break;
      }
    }
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
