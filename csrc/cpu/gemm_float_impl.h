// Float GEMM for float32/float16/bfloat16 weights when there are enough activation rows
// (prefill, embedding batches): out[M,N] = x[M,K] @ W[N,K]^T (+ bias). Included by
// linear_impl.h inside each ISA's anonymous namespace, over the same ops struct Q.
//
// The driver (linear.cpp) packs the weights once per call, decoded to float, into column groups
// of kGemmNr = 16 weight rows: for each K block of kGemmKc = 256, group g holds [k][16] (zero
// padded past N). The layout does not depend on the ISA, so every task of every thread reads
// the same packed copy (packing per task would repeat it once per block of activation rows).
//
// Register tile: MR activation rows x 16 columns = MR x NV accumulators (NV = 16 / W):
//   AVX2   (W=8):  MR 6,  NV 2 -> 12 ymm accumulators; per k 2 loads + 6 broadcasts + 12 FMAs
//   AVX-512(W=16): MR 12, NV 1 -> 12 zmm accumulators; per k 1 load + 12 broadcasts + 12 FMAs
//   scalar (W=1):  MR 2,  NV 16
// so the FMA ports, not loads, are the limit (Zen 3: 2 FMA/cycle, 3 loads/cycle -> 6 cycles per
// k for 192 flops = 32 flop/cycle/core, the machine's peak). The dot-product tile of rows_float
// cannot get there: it needs a horizontal sum per output and one load per FMA.
// Activations are not packed: the MR rows are read in place (each broadcast walks one row).
//
// Every output is one FMA chain over k in increasing order within a K block, blocks added in
// order to bias (or 0): the result does not depend on the tile position, the thread count or
// which other rows share the call.
template <class Q>
constexpr int gemm_mr() {
  return Q::W >= 16 ? 12 : Q::W >= 8 ? 6 : 2;
}

template <class Q, int MR>
void gemm_micro(const float* const* x, int64_t k0, int64_t kc, const float* panel, float* acc_out) {
  constexpr int NV = kGemmNr / Q::W;
  typename Q::F c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = Q::zero();
  for (int64_t k = 0; k < kc; ++k) {
    typename Q::F b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Q::load(panel + k * kGemmNr + v * Q::W);
    for (int r = 0; r < MR; ++r) {
      const typename Q::F av = Q::set1(x[r][k0 + k]);
      for (int v = 0; v < NV; ++v) c[r][v] = Q::fma(av, b[v], c[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) std::memcpy(acc_out + r * kGemmNr + v * Q::W, &c[r][v], sizeof(typename Q::F));
}

template <class Q, int MR>
void gemm_micro_rows(int mr, const float* const* x, int64_t k0, int64_t kc, const float* panel, float* acc) {
  if constexpr (MR > 1) {
    if (mr < MR) return gemm_micro_rows<Q, MR - 1>(mr, x, k0, kc, panel, acc);
  }
  gemm_micro<Q, MR>(x, k0, kc, panel, acc);
}

template <class Q>
void gemm_float(const LinearArgs& a, const float* wpack, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int MR = gemm_mr<Q>();
  const int64_t npad = (a.N + kGemmNr - 1) / kGemmNr * kGemmNr;
  alignas(64) float acc[MR * kGemmNr];
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, a.K - k0);
    const float* block = wpack + k0 * npad;  // this K block: npad/16 groups of [kc][16]
    for (int64_t n = n0; n < n1; n += kGemmNr) {  // n0 is a multiple of 16 (driver)
      const float* panel = block + n * kc;
      const int nr = static_cast<int>(std::min<int64_t>(kGemmNr, n1 - n));
      for (int64_t m = m0; m < m1; m += MR) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, m1 - m));
        const float* x[MR];
        for (int r = 0; r < mr; ++r) x[r] = a.x + (m + r) * a.K;
        gemm_micro_rows<Q, MR>(mr, x, k0, kc, panel, acc);
        for (int r = 0; r < mr; ++r) {
          float* o = a.out + (m + r) * a.N + n;
          const float* s = acc + r * kGemmNr;
          if (k0 == 0) {
            for (int j = 0; j < nr; ++j) o[j] = (a.bias ? a.bias[n + j] : 0.0f) + s[j];
          } else {
            for (int j = 0; j < nr; ++j) o[j] += s[j];
          }
        }
      }
    }
  }
}
