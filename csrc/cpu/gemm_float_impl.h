// Float GEMM for float32/float16/bfloat16 weights when there are enough activation rows
// (prefill, embedding batches): out[M,N] = x[M,K] @ W[N,K]^T (+ bias). Included by
// linear_impl.h inside each ISA's anonymous namespace, over the same ops struct Q.
//
// Register tile: 6 activation rows x NR = 2 vectors of weight rows (16 on AVX2, 32 on
// AVX-512) held in 12 accumulators; per k: 2 vector loads of packed weights, 6 broadcasts of
// activations, 12 FMAs, so the FMA ports, not loads, are the limit (Zen 3: 2 FMA/cycle, 3
// loads/cycle -> 6 cycles per k for 192 (AVX2) flops = 32 flop/cycle/core, the machine's peak).
// The dot-product tile of rows_float cannot get there: it needs a horizontal sum per output
// and one load per FMA.
//
// Weights are packed per task into [k][NR] micro-panels (decoded to float once, zero padded past
// N) for KC = 256 values of k at a time: a micro-panel is 16 KiB on AVX2 (L1) and a task's panel
// of up to 128 weight rows 128 KiB (L2). Activations are not packed: the 6 rows are read in
// place (broadcast loads walk each row sequentially). Packing costs one decode per weight per
// task, against 2 * rows flops of use; the driver sends only M >= kGemmMinRows here.
//
// Every output is one FMA chain over k in increasing order within a KC block, blocks added in
// order to bias (or 0): the result does not depend on the tile position or the thread count.
static constexpr int64_t kGemmKc = 256;
static constexpr int kGemmMr = 6;

template <class Q, WKind KIND>
void gemm_pack_weights(const LinearArgs& a, int64_t n0, int64_t n1, int64_t k0, int64_t kc, float* dst) {
  constexpr int NR = 2 * Q::W;
  const int64_t rb = linear_row_bytes(KIND, a.K);
  const char* w = static_cast<const char*>(a.w);
  for (int64_t g = n0; g < n1; g += NR) {
    float* panel = dst + (g - n0) * kc;
    const int nr = static_cast<int>(std::min<int64_t>(NR, n1 - g));
    for (int j = 0; j < NR; ++j) {
      if (j >= nr) {
        for (int64_t k = 0; k < kc; ++k) panel[k * NR + j] = 0.0f;
        continue;
      }
      const char* row = w + (g + j) * rb;
      for (int64_t k = 0; k < kc; ++k) panel[k * NR + j] = scalar_weight<KIND>(row, k0 + k);
    }
  }
}

template <class Q, int MR>
void gemm_micro(const float* const* x, int64_t k0, int64_t kc, const float* panel, float* acc_out) {
  constexpr int NR = 2 * Q::W;
  typename Q::F c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = Q::zero();
  for (int64_t k = 0; k < kc; ++k) {
    const typename Q::F b0 = Q::load(panel + k * NR), b1 = Q::load(panel + k * NR + Q::W);
    for (int r = 0; r < MR; ++r) {
      const typename Q::F av = Q::set1(x[r][k0 + k]);
      c0[r] = Q::fma(av, b0, c0[r]);
      c1[r] = Q::fma(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    std::memcpy(acc_out + r * NR, &c0[r], sizeof(typename Q::F));
    std::memcpy(acc_out + r * NR + Q::W, &c1[r], sizeof(typename Q::F));
  }
}

template <class Q>
void gemm_micro_mr(int mr, const float* const* x, int64_t k0, int64_t kc, const float* panel, float* acc) {
  switch (mr) {
    case 6: gemm_micro<Q, 6>(x, k0, kc, panel, acc); break;
    case 5: gemm_micro<Q, 5>(x, k0, kc, panel, acc); break;
    case 4: gemm_micro<Q, 4>(x, k0, kc, panel, acc); break;
    case 3: gemm_micro<Q, 3>(x, k0, kc, panel, acc); break;
    case 2: gemm_micro<Q, 2>(x, k0, kc, panel, acc); break;
    default: gemm_micro<Q, 1>(x, k0, kc, panel, acc); break;
  }
}

template <class Q, WKind KIND>
void gemm_float(const LinearArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  constexpr int NR = 2 * Q::W;
  const int64_t groups = (n1 - n0 + NR - 1) / NR;
  thread_local std::vector<float> pack;
  pack.resize(static_cast<size_t>(groups * NR * kGemmKc));
  alignas(64) float acc[kGemmMr * NR];
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, a.K - k0);
    gemm_pack_weights<Q, KIND>(a, n0, n1, k0, kc, pack.data());
    for (int64_t g = 0; g < groups; ++g) {
      const float* panel = pack.data() + g * NR * kc;
      const int64_t n = n0 + g * NR;
      const int nr = static_cast<int>(std::min<int64_t>(NR, n1 - n));
      for (int64_t m = m0; m < m1; m += kGemmMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kGemmMr, m1 - m));
        const float* x[kGemmMr];
        for (int r = 0; r < mr; ++r) x[r] = a.x + (m + r) * a.K;
        gemm_micro_mr<Q>(mr, x, k0, kc, panel, acc);
        for (int r = 0; r < mr; ++r) {
          float* o = a.out + (m + r) * a.N + n;
          const float* s = acc + r * NR;
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
