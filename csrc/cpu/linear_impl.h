// The linear kernels written once over an ops struct Q (QScalar, QAvx2, QAvx512). Included
// inside an anonymous namespace by each ISA translation unit, after linear.h, fp8.h and the
// ops header, so instantiations have internal linkage and never mix across ISAs.
//
// Shape of the work: a tile is MR (<= 4) activation rows times one weight row; the weight
// block is decoded once into registers and used for all MR rows. The driver (linear.cpp)
// hands each task a panel of weight rows small enough to stay in L2 and walks every
// activation row over it, so weights are read from DRAM once per call:
//   GEMV (M <= 8): bytes = N * row_bytes (+ tiny x); flops = 2*M*N*K, i.e. <= 16*N*K flops
//     for N*K*b bytes: 2-16 flop/byte for b = 1, far below the ~50 flop/byte a core can do,
//     so the bound is the DRAM read of the weights (target: the streaming-read probe's GB/s).
//   GEMM (M > 8): flops 2*M*N*K dominate; int kinds do 32 MACs per maddubs+madd pair, float
//     kinds one FMA per W MACs; the x rows are re-read from L1/L2 once per weight row.
static inline uint16_t load_u16(const char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

template <WKind KIND>
static inline float scalar_weight(const char* wrow, int64_t k) {
  if constexpr (KIND == WKind::kF32) return reinterpret_cast<const float*>(wrow)[k];
  else if constexpr (KIND == WKind::kF16) return half_to_float(reinterpret_cast<const uint16_t*>(wrow)[k]);
  else if constexpr (KIND == WKind::kBF16) return bf16_to_float(reinterpret_cast<const uint16_t*>(wrow)[k]);
  else return fp8_e4m3_decode(reinterpret_cast<const uint8_t*>(wrow)[k]) * (1.0f / 256.0f);
}

// Float activations: f32/f16/bf16/fp8/int4 weights decoded to float in registers.
template <class Q, WKind KIND, int MR>
void rows_float(const LinearArgs& a, int64_t m0, int64_t n, const char* wrow, float* res) {
  constexpr int NV = 32 / Q::W;
  const int64_t K = a.K, nb = K / 32;
  const float* x[MR];
  for (int r = 0; r < MR; ++r) x[r] = a.x + (m0 + r) * K;
  typename Q::F acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = Q::zero();
  for (int64_t b = 0; b < nb; ++b) {
    typename Q::F wv[NV];
    if constexpr (KIND == WKind::kF32) Q::dec_f32(reinterpret_cast<const float*>(wrow) + b * 32, wv);
    else if constexpr (KIND == WKind::kF16) Q::dec_f16(reinterpret_cast<const uint16_t*>(wrow) + b * 32, wv);
    else if constexpr (KIND == WKind::kBF16) Q::dec_bf16(reinterpret_cast<const uint16_t*>(wrow) + b * 32, wv);
    else if constexpr (KIND == WKind::kFp8) Q::dec_fp8(reinterpret_cast<const uint8_t*>(wrow) + b * 32, wv);
    else {
      Q::dec_i4(reinterpret_cast<const uint8_t*>(wrow) + b * 16, wv);
      const typename Q::F s = Q::set1(Q::h2f(a.gscale[n * (K / a.group) + (b * 32) / a.group]));
      for (int v = 0; v < NV; ++v) wv[v] = Q::mul(wv[v], s);
    }
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v & 1] = Q::fma(Q::load(x[r] + b * 32 + v * Q::W), wv[v], acc[r][v & 1]);
  }
  for (int r = 0; r < MR; ++r) res[r] = Q::hsum(acc[r][0]) + Q::hsum(acc[r][1]);
  if constexpr (KIND != WKind::kInt4) {  // int4 K is a multiple of the group (>= 32)
    for (int64_t k = nb * 32; k < K; ++k) {
      const float wk = scalar_weight<KIND>(wrow, k);
      for (int r = 0; r < MR; ++r) res[r] += x[r][k] * wk;
    }
  }
  if constexpr (KIND == WKind::kFp8)
    for (int r = 0; r < MR; ++r) res[r] *= a.wscale[n] * 256.0f;
}

// Quantized activations: int8 (per-token scale) and the ggml block kinds (per-block scales).
template <class Q, WKind KIND, int MR>
void rows_int(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t n, const char* wrow, float* res) {
  const int64_t K = a.K, nb = K / 32;
  const int8_t* xq[MR];
  for (int r = 0; r < MR; ++r) xq[r] = qa.q + (m0 + r) * qa.kp;
  if constexpr (KIND == WKind::kInt8) {
    const int8_t* w = reinterpret_cast<const int8_t*>(wrow);
    typename Q::IAcc acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = Q::izero();
    for (int64_t b = 0; b < nb; ++b) {
      const typename Q::I wb = Q::load_i8(w + b * 32);
      for (int r = 0; r < MR; ++r) acc[r] = Q::iadd(acc[r], Q::dot_ss(wb, Q::load_i8(xq[r] + b * 32)));
    }
    for (int r = 0; r < MR; ++r) {
      int32_t t = Q::ihsum(acc[r]);
      for (int64_t k = nb * 32; k < K; ++k) t += static_cast<int32_t>(w[k]) * xq[r][k];
      res[r] = static_cast<float>(t) * (qa.d[m0 + r] * a.wscale[n]);
    }
  } else {
    constexpr int64_t kBlock = KIND == WKind::kQ8_0 ? 34 : KIND == WKind::kQ4_0 ? 18 : 20;
    typename Q::F acc[MR];
    float accm[MR] = {};
    for (int r = 0; r < MR; ++r) acc[r] = Q::zero();
    for (int64_t b = 0; b < nb; ++b) {
      const char* blk = wrow + b * kBlock;
      const float dw = Q::h2f(load_u16(blk));
      typename Q::I wb;
      if constexpr (KIND == WKind::kQ8_0) wb = Q::load_i8(reinterpret_cast<const int8_t*>(blk + 2));
      else if constexpr (KIND == WKind::kQ4_0) wb = Q::sub8(Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 2)));
      else wb = Q::load_q4(reinterpret_cast<const uint8_t*>(blk + 4));
      for (int r = 0; r < MR; ++r) {
        const int64_t bi = (m0 + r) * nb + b;
        const typename Q::I xb = Q::load_i8(xq[r] + b * 32);
        const typename Q::IAcc p = KIND == WKind::kQ4_1 ? Q::dot_us(wb, xb) : Q::dot_ss(wb, xb);
        acc[r] = Q::fma(Q::to_f(p), Q::set1(dw * qa.d[bi]), acc[r]);
      }
      if constexpr (KIND == WKind::kQ4_1) {
        const float mw = Q::h2f(load_u16(blk + 2));
        for (int r = 0; r < MR; ++r) accm[r] += mw * qa.ds[(m0 + r) * nb + b];
      }
    }
    for (int r = 0; r < MR; ++r) res[r] = Q::hsum(acc[r]) + accm[r];
  }
}

template <class Q, WKind KIND, int MR>
void rows(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t n, const char* wrow, float* res) {
  if constexpr (KIND == WKind::kInt8 || KIND == WKind::kQ8_0 || KIND == WKind::kQ4_0 || KIND == WKind::kQ4_1)
    rows_int<Q, KIND, MR>(a, qa, m0, n, wrow, res);
  else
    rows_float<Q, KIND, MR>(a, m0, n, wrow, res);
}

template <class Q, WKind KIND>
void tile_kind(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t rb = linear_row_bytes(KIND, a.K);
  for (int64_t mb = m0; mb < m1; mb += 4) {
    const int64_t mr = std::min<int64_t>(4, m1 - mb);
    for (int64_t n = n0; n < n1; ++n) {
      const char* wrow = static_cast<const char*>(a.w) + n * rb;
      float res[4];
      switch (mr) {
        case 4: rows<Q, KIND, 4>(a, qa, mb, n, wrow, res); break;
        case 3: rows<Q, KIND, 3>(a, qa, mb, n, wrow, res); break;
        case 2: rows<Q, KIND, 2>(a, qa, mb, n, wrow, res); break;
        default: rows<Q, KIND, 1>(a, qa, mb, n, wrow, res); break;
      }
      const float bn = a.bias ? a.bias[n] : 0.0f;
      for (int64_t r = 0; r < mr; ++r) a.out[(mb + r) * a.N + n] = res[r] + bn;
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
