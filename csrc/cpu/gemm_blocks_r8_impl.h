// GEMM for the block kinds (q4_0, q4_1, int4 from kR8MinRows activation rows, q8_0 from
// kR8MinRowsQ8: batched decode and prefill), where rows4_blocks (linear_impl.h) spends most of
// its instructions on per-block horizontal sums. Included by linear_impl.h; written over the
// ops struct Q.
//
// Each task repacks 8 weight rows at a time into a small per-thread panel: per 32-value block,
// 8 groups of 32 bytes (group g: values 4g..4g+3 of the 8 rows, one row per 32-bit lane,
// unpacked to 0..15) plus the 8 rows' float scales d and offsets m. Every activation row of the
// task then runs over that panel (nb x 320 bytes: L1-resident up to K ~ 3000, L2 beyond) with
// broadcast 4-byte activation slices:
//   per block and activation row: 8 maddubs + 8 int16 adds (8 rows x 32 MACs), one madd + cvt,
//   and two FMAs for the scales: ~21 vector ops per 256 MACs, where rows4_blocks needs ~48.
//   Repacking a block of 8 rows costs ~70 ops, paid once per task for all its rows, so this
//   wins from ~4 rows (kR8MinRows). The 8 maddubs + 1 madd per 256 MACs are the bound: this
//   Zen 3 issues one per cycle, ~28 MACs/cycle, and measures 140-160 GOP/s per core at 16-32
//   rows (SmolLM2 layers), ~300 GOP/s on both cores at 512 rows (the float GEMM: ~160 GFLOP/s).
// The float arithmetic per (row, weight row) is exactly rows4_blocks': acc = fma(float(dot),
// d_w * d_x, acc) in block order, m_acc = fma(m_w, d_x * sum(q_x), m_acc), result acc + m_acc.
// So a row's output is the same bits whichever kernel, tile or batch computed it.
//
// q8_0 (signed weights) uses the same panels with a second set of groups: |w| as unsigned bytes
// and w itself, for the sign trick maddubs(|w|, sign(x, w)); its pair sums (up to 2*128*127)
// cannot add up in int16, so each step widens with madd into int32 lanes (r8_dot_s): 8 maddubs
// + 8 madd per 256 MACs, about twice the 4-bit kinds' time per MAC, yet ~1.3-1.5x rows4_blocks
// at 16-32 rows (measured on SmolLM2's shapes and its 49152 x 576 LM head). No offset term.
// Bytes per block of the panel: groups (|w| then w for q8_0), then d[8], m[8].
template <WKind KIND>
constexpr int64_t kR8BlockBytes = (KIND == WKind::kQ8_0 ? 2 : 1) * 8 * 32 + 2 * 8 * sizeof(float);
template <WKind KIND>
constexpr int64_t kR8Scales = (KIND == WKind::kQ8_0 ? 2 : 1) * 8 * 32;  // offset of d[8]

// Weight rows nrow[0..7] -> panel (nb blocks of kR8BlockBytes).
template <class Q, WKind KIND>
void r8_repack(const LinearArgs& a, const int64_t* nrow, uint8_t* panel) {
  constexpr int64_t kBlock = KIND == WKind::kQ8_0 ? 34 : KIND == WKind::kQ4_0 ? 18 : KIND == WKind::kQ4_1 ? 20 : 16;
  const int64_t nb = a.K / 32, rb = linear_row_bytes(KIND, a.K);
  const char* wrow[8];
  const uint16_t* gscale[8] = {};
  int gshift = 0;
  if constexpr (KIND == WKind::kInt4) gshift = __builtin_ctzll(static_cast<unsigned long long>(a.group)) - 5;
  for (int j = 0; j < 8; ++j) {
    wrow[j] = static_cast<const char*>(a.w) + nrow[j] * rb;
    if constexpr (KIND == WKind::kInt4) gscale[j] = a.gscale + nrow[j] * (a.K / a.group);
  }
  // The next group's 8 rows follow these in memory (one span of 8 * rb bytes): touch it at this
  // group's pace, 8 * kBlock bytes per block, so it arrives from DRAM while this group computes.
  const char* w = static_cast<const char*>(a.w);
  const int64_t next = (nrow[0] + 8) * rb, wend = a.N * rb;  // byte offsets into W
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t off = next + b * 8 * kBlock; off < next + (b + 1) * 8 * kBlock && off < wend; off += 64)
      __builtin_prefetch(w + off);
    uint8_t* dst = panel + b * kR8BlockBytes<KIND>;
    typename Q::G8 rows[8], groups[8];
    uint16_t dh[8], mh[8];
    for (int j = 0; j < 8; ++j) {
      const char* blk = wrow[j] + b * kBlock;
      if constexpr (KIND == WKind::kInt4) {
        dh[j] = gscale[j][b >> gshift];
        rows[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk));
      } else if constexpr (KIND == WKind::kQ4_0) {
        dh[j] = load_u16(blk);
        rows[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 2));
      } else if constexpr (KIND == WKind::kQ8_0) {
        dh[j] = load_u16(blk);
        rows[j] = Q::load_i8(reinterpret_cast<const int8_t*>(blk + 2));
      } else {
        dh[j] = load_u16(blk);
        mh[j] = load_u16(blk + 2);
        rows[j] = Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 4));
      }
    }
    Q::g8_transpose(rows, groups);
    for (int g = 0; g < 8; ++g) {
      if constexpr (KIND == WKind::kQ8_0) {
        Q::g8_store(Q::g8_abs(groups[g]), dst + 32 * g);
        Q::g8_store(groups[g], dst + 256 + 32 * g);
      } else {
        Q::g8_store(groups[g], dst + 32 * g);
      }
    }
    const typename Q::R8 dw = Q::r8_halves(dh);
    // the offset term as rows4_blocks forms it: q4_1 m; q4_0/int4 (q - 8) d -> -8 d; q8_0 none
    typename Q::R8 mw = Q::r8_zero();
    if constexpr (KIND == WKind::kQ4_1) mw = Q::r8_halves(mh);
    else if constexpr (KIND != WKind::kQ8_0) mw = Q::r8_mul(dw, Q::r8_set1(-8.0f));
    Q::r8_store(dw, reinterpret_cast<float*>(dst + kR8Scales<KIND>));
    Q::r8_store(mw, reinterpret_cast<float*>(dst + kR8Scales<KIND> + 32));
  }
}

// res[r * 8 + j] for activation rows m0..m0+MR-1 and the panel's 8 weight rows.
template <class Q, WKind KIND, int MR>
void r8_rows(const LinearArgs& a, const QuantActs& qa, int64_t m0, const uint8_t* panel, float* res) {
  const int64_t nb = a.K / 32;
  const int8_t* xq[MR];
  for (int r = 0; r < MR; ++r) xq[r] = qa.q + (m0 + r) * qa.kp;
  typename Q::R8 acc[MR], accm[MR];
  for (int r = 0; r < MR; ++r) acc[r] = accm[r] = Q::r8_zero();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = panel + b * kR8BlockBytes<KIND>;
    typename Q::S8 s[MR];
    for (int r = 0; r < MR; ++r) s[r] = Q::s8_zero();
    for (int g = 0; g < 8; ++g) {
      const typename Q::G8 w = Q::g8_load(blk + 32 * g);
      if constexpr (KIND == WKind::kQ8_0) {
        const typename Q::G8 ws = Q::g8_load(blk + 256 + 32 * g);
        for (int r = 0; r < MR; ++r) s[r] = Q::r8_dot_s(s[r], w, ws, xq[r] + b * 32 + 4 * g);
      } else {
        for (int r = 0; r < MR; ++r) s[r] = Q::r8_dot(s[r], w, xq[r] + b * 32 + 4 * g);
      }
    }
    const typename Q::R8 dw = Q::r8_load(reinterpret_cast<const float*>(blk + kR8Scales<KIND>));
    const typename Q::R8 mw = Q::r8_load(reinterpret_cast<const float*>(blk + kR8Scales<KIND> + 32));
    for (int r = 0; r < MR; ++r) {
      const int64_t bi = (m0 + r) * nb + b;
      const typename Q::R8 dot = KIND == WKind::kQ8_0 ? Q::r8_sum32(s[r]) : Q::r8_sum(s[r]);
      acc[r] = Q::r8_fma(dot, Q::r8_mul(dw, Q::r8_set1(qa.d[bi])), acc[r]);
      if constexpr (KIND != WKind::kQ8_0) accm[r] = Q::r8_fma(mw, Q::r8_set1(qa.ds[bi]), accm[r]);
    }
  }
  for (int r = 0; r < MR; ++r) Q::r8_store(Q::r8_add(acc[r], accm[r]), res + 8 * r);
}

// Weight rows go in groups of 8 from n0; a short last group repeats its last row (computed,
// then dropped), as tile_blocks does.
template <class Q, WKind KIND>
void tile_blocks_r8(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int MR = 4;  // 4 rows x 8 lanes: 13 live vectors (2 and 3 rows measured 25% / 5% slower)
  uint8_t* panel = thread_pack_buffer<uint8_t>(a.K / 32 * kR8BlockBytes<KIND>);
  for (int64_t n = n0; n < n1; n += 8) {
    const int64_t nr = std::min<int64_t>(8, n1 - n);
    int64_t nrow[8];
    for (int j = 0; j < 8; ++j) nrow[j] = n + std::min<int64_t>(j, nr - 1);
    r8_repack<Q, KIND>(a, nrow, panel);
    for (int64_t mb = m0; mb < m1; mb += MR) {
      const int64_t mr = std::min<int64_t>(MR, m1 - mb);
      float res[MR * 8];
      switch (mr) {
        case 4: r8_rows<Q, KIND, 4>(a, qa, mb, panel, res); break;
        case 3: r8_rows<Q, KIND, 3>(a, qa, mb, panel, res); break;
        case 2: r8_rows<Q, KIND, 2>(a, qa, mb, panel, res); break;
        default: r8_rows<Q, KIND, 1>(a, qa, mb, panel, res); break;
      }
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t j = 0; j < nr; ++j)
          a.out[(mb + r) * a.N + n + j] = (a.bias ? a.bias[n + j] : 0.0f) + res[r * 8 + j];
    }
  }
}
