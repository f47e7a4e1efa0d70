// The GELU kernels written once over a primitive set V (GeluScalar, GeluAvx2 or GeluAvx512).
// Included inside an anonymous namespace by each ISA translation unit, after gelu.h and the
// gelu_simd_<isa>.h header, so the instantiations have internal linkage and never mix ISAs.
//
// Both forms are evaluated as  gelu(x) = max(x, -0) - |x| * s(|x|)  (one formula for both signs,
// no branches or masks), where s is the small "other side" of the gate:
//   exact: s(a) = 0.5 * erfc(a / sqrt 2)                  since x * Phi(x) = x - x * Phi(-x)
//   tanh:  s(a) = 1 / (1 + exp(w)), w = 2 sqrt(2/pi) (a + 0.044715 a^3)
// erfc(z) = exp(-z^2) * t * P(t), t = 1 / (1 + p z), P of degree 5: our own weighted minimax fit
// (the Abramowitz-Stegun 7.1.26 form with one more term), weight |x| exp(-z^2) so the error is
// spread evenly over gelu's absolute error (fitted as a linear program, scipy.optimize.linprog,
// against scipy.special.erfcx on a dense grid z in [0, 10.7], p scanned: p = 0.394). Fit error
// 4.6e-9; in float32 the maximum absolute error of gelu over [-10, 10], before the final rounding
// of the result, is ~8e-8 (measured, every ISA level; the result's own rounding adds at most half
// an ulp of |gelu(x)|: 6e-8 on [1, 2), 1.2e-7 on [2, 4), 2.4e-7 on [4, 8)). As erf (1 - erfc) the
// same fit is within 3.1e-8 absolute. Relative error is not a goal: in the far negative tail
// (|gelu| < 5e-9, x < -5) it grows to ~0.5% (tanh form: ~1e-5).
// Limits are exact: |x| is clamped to 15 (exact) / 12 (tanh) before the exponential, where the
// gate term underflows to exactly 0, so gelu(x) = x for large x (and +inf), -0 for very negative x
// (and -inf); NaN propagates through max(-0, x); gelu(-0) = -0, gelu(+0) = +0.
//
// Napkin math, per element of b bytes: read b, write b (8 bytes for float32), ~40 vector
// instructions per vector (erfc 11 incl. one division, exp 18, the rest 10), ~23 of them on the
// two FMA/multiply pipes: a floor of ~12 cycles per vector. Measured on this project's 2-vCPU AMD
// EPYC (AVX2, 8 lanes): ~0.75 ns per float32 element per core (~17 cycles per vector), i.e.
// ~2.6 G elements/s = ~21 GB/s on two cores, about 70% of the ~31 GB/s read probe: large float32
// arrays sit near the compute/bandwidth crossover; 16-bit types (same math, fewer bytes, extra
// conversions) are compute bound. The embedder's 4000x1536 activations (24.6 MB) are updated in
// place and stay in L3, so there the kernel runs at its compute speed (~2.4 ms on two cores).
constexpr float kGeluClampErf = 15.f;   // erfc(15/sqrt2) * 7.5 underflows: gate term exactly 0 beyond
constexpr float kGeluClampTanh = 12.f;  // w(12) = 142.6: exp(-w) underflows to 0

#include "vec_exp_impl.h"  // exp_nonpos, shared with silu_and_mul_impl.h

// gelu(x) = x * Phi(x) = max(x, -0) - 0.5 |x| erfc(|x| / sqrt 2).
template <class V>
inline typename V::F gelu_erf_v(typename V::F x) {
  using F = typename V::F;
  const F pos = V::max(V::set1(-0.f), x);                   // x for x > 0 and NaN, else -0 / +0
  const F a = V::min(V::set1(kGeluClampErf), V::abs(x));   // NaN stays NaN
  const F nh = V::mul(a, V::set1(-0.5f));                  // -0.5 |x|
  const F t = V::div(V::set1(1.f), V::fmadd(a, V::set1(0.2786000669f), V::set1(1.f)));  // p / sqrt 2
  F q = V::set1(-2.184666395e-01f);
  q = V::fmadd(q, t, V::set1(8.209311962e-01f));
  q = V::fmadd(q, t, V::set1(-5.363544822e-01f));
  q = V::fmadd(q, t, V::set1(5.819464922e-01f));
  q = V::fmadd(q, t, V::set1(1.176812872e-01f));
  q = V::fmadd(q, t, V::set1(2.342621982e-01f));
  q = V::mul(q, t);                                          // erfc(z) * exp(z^2)
  const F e = exp_nonpos<V>(V::mul(nh, a));                  // exp(-z^2) = exp(-x^2 / 2)
  return V::fmadd(V::mul(nh, q), e, pos);
}

// Tanh form: 0.5 x (1 + tanh(u)) = x * sigmoid(2u) = max(x, -0) - |x| / (1 + exp(w)).
template <class V>
inline typename V::F gelu_tanh_v(typename V::F x) {
  using F = typename V::F;
  const F pos = V::max(V::set1(-0.f), x);
  const F a = V::min(V::set1(kGeluClampTanh), V::abs(x));
  const F u = V::mul(a, a);
  // -w = -2 sqrt(2/pi) (a + 0.044715 a^3)
  const F nw = V::mul(a, V::fmadd(u, V::set1(-7.135481627e-02f), V::set1(-1.595769122f)));
  const F e = exp_nonpos<V>(nw);
  return V::sub(pos, V::div(V::mul(a, e), V::add(e, V::set1(1.f))));
}

template <class V, bool kTanh>
inline typename V::F gelu_v(typename V::F x) {
  if constexpr (kTanh) return gelu_tanh_v<V>(x);
  else return gelu_erf_v<V>(x);
}

// A partial vector (alignment peel or tail): through a zero-padded stack buffer, so every
// element goes through the same vector code (and gets the same result) as the main loop.
template <class V, DType T, bool kTanh>
void gelu_partial(const char* x, char* y, int64_t count) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  alignas(64) char in[V::W * b] = {};
  alignas(64) char res[V::W * b];
  std::memcpy(in, x, static_cast<size_t>(count * b));
  V::template store<T, false>(res, gelu_v<V, kTanh>(V::template load<T>(in)));
  std::memcpy(y, res, static_cast<size_t>(count * b));
}

template <class V, DType T, bool kTanh, bool kStream>
void gelu_range_t(const GeluArgs& a, int64_t i0, int64_t i1) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  const char* x = static_cast<const char*>(a.x);
  char* y = static_cast<char*>(a.out);
  int64_t i = i0;
  if constexpr (kStream) {  // peel to the store alignment (out is element-aligned: checked by the caller)
    constexpr int64_t align = V::W * b;
    const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(y + i * b) % align);
    const int64_t peel = std::min<int64_t>(i1 - i, mis == 0 ? 0 : (align - mis) / b);
    if (peel > 0) gelu_partial<V, T, kTanh>(x + i * b, y + i * b, peel);
    i += peel;
  }
  for (; i + 2 * V::W <= i1; i += 2 * V::W) {  // two independent chains per iteration: more ILP
    const auto g0 = gelu_v<V, kTanh>(V::template load<T>(x + i * b));
    const auto g1 = gelu_v<V, kTanh>(V::template load<T>(x + (i + V::W) * b));
    V::template store<T, kStream>(y + i * b, g0);
    V::template store<T, kStream>(y + (i + V::W) * b, g1);
  }
  for (; i + V::W <= i1; i += V::W)
    V::template store<T, kStream>(y + i * b, gelu_v<V, kTanh>(V::template load<T>(x + i * b)));
  if (i < i1) gelu_partial<V, T, kTanh>(x + i * b, y + i * b, i1 - i);
  if constexpr (kStream) V::fence();
}

template <class V, DType T>
void gelu_range_d(const GeluArgs& a, int64_t i0, int64_t i1) {
  if (a.tanh) {
    if (a.stream) gelu_range_t<V, T, true, true>(a, i0, i1);
    else gelu_range_t<V, T, true, false>(a, i0, i1);
  } else {
    if (a.stream) gelu_range_t<V, T, false, true>(a, i0, i1);
    else gelu_range_t<V, T, false, false>(a, i0, i1);
  }
}

template <class V>
void gelu_range_dispatch(const GeluArgs& a, int64_t i0, int64_t i1) {
  switch (a.dtype) {
    case DType::kFloat32: gelu_range_d<V, DType::kFloat32>(a, i0, i1); break;
    case DType::kFloat16: gelu_range_d<V, DType::kFloat16>(a, i0, i1); break;
    case DType::kBFloat16: gelu_range_d<V, DType::kBFloat16>(a, i0, i1); break;
  }
}
