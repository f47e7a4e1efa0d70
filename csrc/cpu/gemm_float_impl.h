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
//   AVX-512(W=16): two adjacent column groups at once (gemm_micro2): MR 12 x 32 columns -> 24 zmm
//                  accumulators; per k 2 loads + 12 broadcasts + 24 FMAs. One group (12 zmm, 13
//                  loads per 12 FMAs) reached ~53% of a Xeon's 2 x 16-lane FMA peak (stop 23).
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

// Two adjacent column groups (panels p0 and p1, 16 columns each) in one register tile: the
// AVX-512 kernel. Each output is the same FMA chain as in gemm_micro, so the bits are the same.
template <class Q, int MR>
void gemm_micro2(const float* const* x, int64_t k0, int64_t kc, const float* p0, const float* p1, float* acc_out) {
  typename Q::F c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = Q::zero();
  for (int64_t k = 0; k < kc; ++k) {
    const typename Q::F b0 = Q::load(p0 + k * kGemmNr), b1 = Q::load(p1 + k * kGemmNr);
    for (int r = 0; r < MR; ++r) {
      const typename Q::F av = Q::set1(x[r][k0 + k]);
      c0[r] = Q::fma(av, b0, c0[r]);
      c1[r] = Q::fma(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    std::memcpy(acc_out + r * 2 * kGemmNr, &c0[r], sizeof(typename Q::F));
    std::memcpy(acc_out + r * 2 * kGemmNr + kGemmNr, &c1[r], sizeof(typename Q::F));
  }
}

// out rows o[r][0, 32) = (first ? bias (or 0) : o) + acc, on whole vectors: fma(1, acc, base) is
// the one rounding of the scalar add (acc * 1 is exact), so the bits match the scalar epilogue.
template <class Q>
void gemm_store2(int mr, float* const* o, const float* bias, bool first, const float* acc) {
  const typename Q::F one = Q::set1(1.0f);
  for (int r = 0; r < mr; ++r)
    for (int h = 0; h < 2; ++h) {
      float* dst = o[r] + h * kGemmNr;
      const typename Q::F base = !first ? Q::load(dst) : bias ? Q::load(bias + h * kGemmNr) : Q::zero();
      const typename Q::F v = Q::fma(one, Q::load(acc + r * 2 * kGemmNr + h * kGemmNr), base);
      std::memcpy(dst, &v, sizeof(v));
    }
}

template <class Q, int MR>
void gemm_micro2_rows(int mr, const float* const* x, int64_t k0, int64_t kc, const float* p0, const float* p1,
                      float* acc) {
  if constexpr (MR > 1) {
    if (mr < MR) return gemm_micro2_rows<Q, MR - 1>(mr, x, k0, kc, p0, p1, acc);
  }
  gemm_micro2<Q, MR>(x, k0, kc, p0, p1, acc);
}

template <class Q>
void gemm_float(const LinearArgs& a, const float* wpack, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int MR = gemm_mr<Q>();
  // AVX-512 takes two 16-column groups per tile (gemm_micro2) while at least 17 columns remain.
  constexpr bool kPair = Q::W == kGemmNr;
  const int64_t npad = (a.N + kGemmNr - 1) / kGemmNr * kGemmNr;
  alignas(64) float acc[MR * 2 * kGemmNr];
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, a.K - k0);
    const float* block = wpack + k0 * npad;  // this K block: npad/16 groups of [kc][16]
    for (int64_t n = n0; n < n1;) {  // n0 is a multiple of 16 (driver)
      const float* panel = block + n * kc;
      const bool pair = kPair && n1 - n > kGemmNr;
      const int64_t width = pair ? 2 * kGemmNr : kGemmNr;
      const int nr = static_cast<int>(std::min<int64_t>(width, n1 - n));
      for (int64_t m = m0; m < m1; m += MR) {
        const int mr = static_cast<int>(std::min<int64_t>(MR, m1 - m));
        const float* x[MR];
        for (int r = 0; r < mr; ++r) x[r] = a.x + (m + r) * a.K;
        if (pair) gemm_micro2_rows<Q, MR>(mr, x, k0, kc, panel, panel + kGemmNr * kc, acc);
        else gemm_micro_rows<Q, MR>(mr, x, k0, kc, panel, acc);
        if (nr == 2 * kGemmNr) {  // whole pair: vector epilogue
          float* o[MR];
          for (int r = 0; r < mr; ++r) o[r] = a.out + (m + r) * a.N + n;
          gemm_store2<Q>(mr, o, a.bias ? a.bias + n : nullptr, k0 == 0, acc);
          continue;
        }
        for (int r = 0; r < mr; ++r) {
          float* o = a.out + (m + r) * a.N + n;
          const float* s = acc + r * width;
          if (k0 == 0) {
            for (int j = 0; j < nr; ++j) o[j] = (a.bias ? a.bias[n + j] : 0.0f) + s[j];
          } else {
            for (int j = 0; j < nr; ++j) o[j] += s[j];
          }
        }
      }
      n += width;
    }
  }
}
