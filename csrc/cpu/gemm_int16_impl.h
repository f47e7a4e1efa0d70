// int8-weight GEMM on integer units (M >= kGemmMinRowsQuant activation rows: prefill, embedding
// batches): out[M,N] = x[M,K] @ (s_w * W[N,K])^T (+ bias), with each row of x turned into int16
// codes (W8A16): d = absmax/32767, q = rint(x / d). Included by linear_impl.h inside each ISA's
// anonymous namespace, over the same ops struct Q (quant_simd_<isa>.h: P, pload, pbcast, pmadd).
//
// Why int16 activations: AVX2 has no int8 dot instruction that is both exact and cheap (the
// vpmaddubsw sign trick needs sign + maddubs + madd + add per 32 MACs); vpmaddwd multiplies int16
// pairs into int32 exactly, so one madd + add does 16 MACs with no saturation step, and int16
// codes carry ~1e-5 relative activation error instead of int8's ~1e-2: as fast as W8A8 here
// and about as accurate as float activations. (AVX-512 VNNI: one vpdpwssd per 32 MACs; AMX:
// gemm_int16_amx.cpp computes the same block sums on int8 tiles.)
//
// Packing (linear.cpp gemm_pack_int16): K blocks of kGemmKc values; in block b (kc values,
// pc = ceil(kc / 2) pairs) each group of kGemmIntNr weight rows is [pc][kGemmIntNr][2] int16,
// i.e. pairs (w[n][k], w[n][k + 1]) in column order, zero past K and past N. Block b starts at
// k0 * npad (every block but the last holds an even kGemmKc values). Activation codes are
// [M, kp2] int16 rows (kp2 = K rounded up to even, zero padded), so a pair is one 32-bit load.
//
// Register tile: MR rows x kGemmIntNr (32) columns, NV = 32 / W accumulators per row:
//   AVX2 (W=8):     MR 3,  NV 4 -> 12 ymm accumulators; per k pair 3 broadcasts + 12 madd/add with
//                   the 4 weight vectors as memory operands (14 of the 16 ymm registers)
//   AVX-512 (W=16): MR 8,  NV 2 -> 16 zmm accumulators
//   scalar (W=1):   MR 1,  NV 32
// Zen 3 issues ~1.5 vpmaddwd per cycle beside the adds: ~24 MACs/cycle/core, 1.5x the 16 of
// the float32 FMA kernel (2 FMA x 8 lanes). Napkin for the embedder's FFN (M=4032, N=1536,
// K=384): 4.75 GMAC -> ~32 ms at 2 cores x 3.1 GHz x 24, against ~48 ms at float32 peak.
//
// Exactness: |q| <= 32767 and |w| <= 127, so a pair sum is <= 8.33e6 in magnitude and a block's
// 128 pairs <= 1.07e9 < 2^31: every block sum is an exact int32, and their int64 total is the
// exact integer dot product S. It is rounded once: out = fma(float(S), d[m] * s_w[n], bias), so
// the result depends only on S, whatever the tile, task split, thread count or kernel (the AMX
// kernel computes the same S, gemm_int16_amx.cpp). Precision "high" (qa.a8) feeds the same
// kernel the dot-product tiles' 8-bit codes widened to int16 (W8A8) and rounds as they do,
// out = bias + float(S) * (d[m] * s_w[n]), rounded twice (linear.h w8a8_product): a row's bits
// then never depend on M. Loop order: per 32-column group and MR rows every K block (the
// group's packed panels, 2 * 32 * K bytes, stay in L2 across the row tiles).
static_assert(kGemmKc % 2 == 0 && kGemmKc <= 256, "int16 GEMM: block sums must stay exact in int32");

template <class Q>
constexpr int igemm_mr() {
  return Q::W >= 16 ? 8 : Q::W >= 8 ? 3 : 1;
}

template <class Q, int MR>
void igemm_micro(const int16_t* const* x, int64_t p0, int64_t pc, const int16_t* panel, int32_t* acc_out) {
  constexpr int NV = kGemmIntNr / Q::W;
  typename Q::P c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = Q::pzero();
  for (int64_t p = 0; p < pc; ++p) {
    typename Q::P b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::pload(panel + p * 2 * kGemmIntNr + v * 2 * Q::W);
    for (int r = 0; r < MR; ++r) {
      const typename Q::P a = Q::pbcast(x[r] + 2 * (p0 + p));
      for (int v = 0; v < NV; ++v) c[r][v] = Q::pmadd(c[r][v], a, b[v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) Q::pstore(acc_out + r * kGemmIntNr + v * Q::W, c[r][v]);
}

template <class Q, int MR>
void igemm_micro_rows(int mr, const int16_t* const* x, int64_t p0, int64_t pc, const int16_t* panel, int32_t* acc) {
  if constexpr (MR > 1) {
    if (mr < MR) return igemm_micro_rows<Q, MR - 1>(mr, x, p0, pc, panel, acc);
  }
  igemm_micro<Q, MR>(x, p0, pc, panel, acc);
}

template <class Q>
void gemm_int16(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int MR = igemm_mr<Q>();
  const int64_t npad = (a.N + kGemmIntNr - 1) / kGemmIntNr * kGemmIntNr;
  alignas(64) int32_t acc[MR * kGemmIntNr];
  int64_t total[MR * kGemmIntNr];
  for (int64_t n = n0; n < n1; n += kGemmIntNr) {  // n0 is a multiple of kGemmIntNr (driver)
    const int nr = static_cast<int>(std::min<int64_t>(kGemmIntNr, n1 - n));
    for (int64_t m = m0; m < m1; m += MR) {
      const int mr = static_cast<int>(std::min<int64_t>(MR, m1 - m));
      const int16_t* x[MR];
      for (int r = 0; r < mr; ++r) x[r] = qa.q16 + (m + r) * qa.kp2;
      std::fill(total, total + MR * kGemmIntNr, int64_t{0});
      // Each K block's int32 sums are exact; their int64 total is the exact dot product.
      for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, a.K - k0), pc = (kc + 1) / 2;
        const int16_t* panel = qa.wpack16 + k0 * npad + n * 2 * pc;
        igemm_micro_rows<Q, MR>(mr, x, k0 / 2, pc, panel, acc);
        for (int i = 0; i < mr * kGemmIntNr; ++i) total[i] += acc[i];
      }
      for (int r = 0; r < mr; ++r) {
        float* o = a.out + (m + r) * a.N + n;
        const int64_t* t = total + r * kGemmIntNr;
        const float dx = qa.d[m + r];
        if (qa.a8) {
          // W8A8 (precision "high"): the dot-product tiles' two roundings (w8a8_product). The
          // products go through memory so that no FMA contraction can join them to the adds,
          // and both loops still vectorize (w8a8_product's volatile would not).
          alignas(64) float prod[kGemmIntNr];
          for (int j = 0; j < nr; ++j) prod[j] = static_cast<float>(t[j]) * (dx * a.wscale[n + j]);
          for (int j = 0; j < nr; ++j) o[j] = (a.bias ? a.bias[n + j] : 0.0f) + prod[j];
          continue;
        }
        // explicit fma: the same single rounding on every ISA, whatever the compiler contracts
        for (int j = 0; j < nr; ++j)
          o[j] = std::fma(static_cast<float>(t[j]), dx * a.wscale[n + j], a.bias ? a.bias[n + j] : 0.0f);
      }
    }
  }
}

// Rows [m0, m1) of x to int16 codes (row stride kp2, the pad column zeroed) and their scales;
// a row holding NaN/inf gets d = NaN and zero codes, so its outputs are NaN.
template <class Q>
void quant_rows16(const float* x, int64_t K, int64_t kp2, int64_t m0, int64_t m1, int16_t* q, float* d) {
  for (int64_t m = m0; m < m1; ++m) {
    const float* row = x + m * K;
    int16_t* qr = q + m * kp2;
    bool finite = true;
    const float amax = Q::absmax(row, K, &finite);
    if (!finite) {
      std::memset(qr, 0, static_cast<size_t>(kp2) * sizeof(int16_t));
      d[m] = std::nanf("");
      continue;
    }
    const float dm = amax / 32767.0f;
    d[m] = dm;
    if (dm > 0.0f) {
      Q::quant16(row, K, 1.0f / dm, qr);
    } else {
      std::memset(qr, 0, static_cast<size_t>(K) * sizeof(int16_t));
    }
    for (int64_t k = K; k < kp2; ++k) qr[k] = 0;
  }
}
