// The sampler's whole-vocabulary passes, written once over a primitive set S (SampleScalarOps or
// SampleAvx2Ops: the GELU primitives plus compares, bit masks and float64 accumulation).
// Included inside each ISA translation unit's anonymous namespace after vec_exp_impl.h.
//
// Napkin math (SmolLM2, vocab 49152; the row is cache-resident after the LM head wrote it): up to
// three reads of 192 KiB. The total-mass pass evaluates one exponential per token (~25 vector ops
// per 8 tokens on AVX2: ~30 us on one Zen 3 core); the max and collect passes are a compare per
// token (~4 us each). The numpy path this replaces cost ~0.3-0.45 ms per row (partition +
// lexsort + exp), and ~6 ms when its 1024-token head could not decide.

template <class S>
SampleScan sample_scan(const float* x, int64_t n) {
  using F = typename S::F;
  F mx = S::set1(-std::numeric_limits<float>::infinity());
  int bad = 0;
  int64_t i = 0;
  for (; i + S::W <= n; i += S::W) {
    const F v = S::loadw(x + i);
    bad |= S::nan_bits(v);
    mx = S::max(v, mx);  // max returns its second operand for a NaN lane; bad reports the NaN
  }
  float m = S::hmax(mx);
  for (; i < n; ++i) {
    if (x[i] != x[i]) bad = 1;
    else m = std::max(m, x[i]);
  }
  return SampleScan{m, bad != 0};
}

// Calls f(v, i) for each vector of x, the last one padded with NaN (NaN >= tau is false, and
// exp_nonpos clamps a NaN argument to -174, giving exactly 0: padding adds nothing anywhere).
template <class S, class Fn>
void for_vectors(const float* x, int64_t n, Fn f) {
  int64_t i = 0;
  for (; i + S::W <= n; i += S::W) f(S::loadw(x + i), i);
  if (i < n) {
    float pad[S::W];
    for (int j = 0; j < S::W; ++j) pad[j] = i + j < n ? x[i + j] : std::numeric_limits<float>::quiet_NaN();
    f(S::loadw(pad), i);
  }
}

template <class S>
double sample_total(const float* x, int64_t n, float m, float inv_t) {
  using F = typename S::F;
  const F mv = S::set1(m), iv = S::set1(inv_t);
  // Each exponential is widened before it is added: a float32 running sum would round tiny tail
  // terms away (2 + 2e-16 == 2 in float32), and ties such as cum / total == top_p exactly must
  // break the way the float64 spec breaks them.
  typename S::DSum total{};
  for_vectors<S>(x, n, [&](F v, int64_t) {
    // exp((x - m) / t) <= 1; -inf logits give exactly 0 (exp_nonpos underflows to 0 below -104)
    S::add_d(total, exp_nonpos<S>(S::mul(S::sub(v, mv), iv)));
  });
  return S::sum(total);
}

template <class S>
int64_t sample_collect(const float* x, int64_t n, float tau, int32_t* ids) {
  const typename S::F tv = S::set1(tau);
  int64_t count = 0;
  for_vectors<S>(x, n, [&](typename S::F v, int64_t i) {
    for (unsigned bits = S::bits(S::ge(v, tv)); bits != 0; bits &= bits - 1)
      ids[count++] = static_cast<int32_t>(i + __builtin_ctz(bits));
  });
  return count;
}
