// The silu_and_mul kernel written once over a primitive set V (GeluScalar, GeluAvx2 or
// GeluAvx512: the elementwise math set gelu_simd_<isa>.h defines) and exp_nonpos
// (vec_exp_impl.h). Included inside an anonymous namespace by each ISA translation unit, after
// silu_and_mul.h, the gelu_simd_<isa>.h header and vec_exp_impl.h.
//
// silu(g) = g * sigmoid(g), evaluated without overflow or cancellation from s = exp(-|g|) in (0, 1]:
//   sigmoid(g) = 1 / (1 + s) for g >= 0,  s / (1 + s) for g < 0
// written branch-free as  silu(g) = (max(g, -0) + min(0, max(g, -120)) * s) / (1 + s):
// the numerator is g for g >= 0 and g * s for g < 0 (the clamp only matters where s is already
// exactly 0, g < -103.97, and turns -inf * 0 into -0). So: silu(+inf) = +inf, silu(-inf) = -0,
// silu(+-0) = +-0, NaN propagates (max(-0, NaN) is the NaN under the x86 min/max rule the
// primitive sets follow); then times u = x[r, I + j] in float32 (so -0 * u, inf * u as IEEE says).
// Error: exp_nonpos ~1e-7 relative plus 3-4 roundings: within ~3 ulp (float32) of the exact
// product before the output rounding. Below g ~ -87 the product g e^g is subnormal and only
// absolutely accurate (s rounds to a subnormal step; for g < -103.97 s = 0 and the result is -0
// where the exact one is a few subnormal steps below zero: error < 1e-43).
//
// Napkin math, per output element of b bytes: read 2b (gate + up), write b (12 bytes float32, 6
// for 16-bit types), ~34 vector instructions per vector (exp 22, the rest 12 incl. one division),
// ~15 of them on the two FMA/multiply pipes: a floor of ~8-9 cycles per vector. Measured on this
// project's 2-vCPU AMD EPYC (AVX2, 8 lanes, one thread, cache-resident 64 x 1536): 0.76 ns per
// float32 output (~18 cycles per vector, like gelu's 17: the vCPU shares its core), 0.85 ns per
// float16 output. Two cores: ~2.6 G outputs/s = ~31 GB/s of float32 traffic, right at the ~31 GB/s
// read probe, so large float32 inputs sit at the compute/bandwidth crossover and 16-bit inputs
// (6 bytes per output) are compute bound. The decoder's sizes are cache resident (SmolLM2: I =
// 1536, a decode row is ~1.2 us of work; a 512-token prefill ~0.3 ms on two cores).

template <class V>
inline typename V::F silu_mul_v(typename V::F g, typename V::F u) {
  using F = typename V::F;
  const F pos = V::max(V::set1(-0.f), g);                               // g for g > 0 and NaN, else +-0
  const F neg = V::min(V::set1(0.f), V::max(g, V::set1(-120.f)));       // g for g < 0 (clamped), else +-0
  const F s = exp_nonpos<V>(V::sub(V::set1(0.f), V::abs(g)));          // exp(-|g|)
  const F num = V::fmadd(neg, s, pos);
  return V::mul(V::div(num, V::add(s, V::set1(1.f))), u);
}

// A partial vector (alignment peel or tail): through zero-padded stack buffers, so every element
// goes through the same vector code (and gets the same result) as the main loop.
template <class V, DType T>
void silu_mul_partial(const char* g, const char* u, char* y, int64_t count) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  alignas(64) char gi[V::W * b] = {};
  alignas(64) char ui[V::W * b] = {};
  alignas(64) char res[V::W * b];
  std::memcpy(gi, g, static_cast<size_t>(count * b));
  std::memcpy(ui, u, static_cast<size_t>(count * b));
  V::template store<T, false>(res, silu_mul_v<V>(V::template load<T>(gi), V::template load<T>(ui)));
  std::memcpy(y, res, static_cast<size_t>(count * b));
}

template <class V, DType T, bool kStream>
void silu_mul_range_t(const SiluMulArgs& a, int64_t r, int64_t c0, int64_t c1) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  const char* g = static_cast<const char*>(a.x) + r * 2 * a.inner * b;
  const char* u = g + a.inner * b;
  char* y = static_cast<char*>(a.out) + r * a.inner * b;
  int64_t i = c0;
  if constexpr (kStream) {  // peel to the store alignment (out is element-aligned: checked by the caller)
    constexpr int64_t align = V::W * b;
    const int64_t mis = static_cast<int64_t>(reinterpret_cast<uintptr_t>(y + i * b) % align);
    const int64_t peel = std::min<int64_t>(c1 - i, mis == 0 ? 0 : (align - mis) / b);
    if (peel > 0) silu_mul_partial<V, T>(g + i * b, u + i * b, y + i * b, peel);
    i += peel;
  }
  for (; i + 2 * V::W <= c1; i += 2 * V::W) {  // two independent chains per iteration: more ILP
    const auto y0 = silu_mul_v<V>(V::template load<T>(g + i * b), V::template load<T>(u + i * b));
    const auto y1 = silu_mul_v<V>(V::template load<T>(g + (i + V::W) * b), V::template load<T>(u + (i + V::W) * b));
    V::template store<T, kStream>(y + i * b, y0);
    V::template store<T, kStream>(y + (i + V::W) * b, y1);
  }
  for (; i + V::W <= c1; i += V::W)
    V::template store<T, kStream>(y + i * b, silu_mul_v<V>(V::template load<T>(g + i * b), V::template load<T>(u + i * b)));
  if (i < c1) silu_mul_partial<V, T>(g + i * b, u + i * b, y + i * b, c1 - i);
  if constexpr (kStream) V::fence();
}

template <class V>
void silu_mul_range_dispatch(const SiluMulArgs& a, int64_t r, int64_t c0, int64_t c1) {
  switch (a.dtype) {
    case DType::kFloat32:
      if (a.stream) silu_mul_range_t<V, DType::kFloat32, true>(a, r, c0, c1);
      else silu_mul_range_t<V, DType::kFloat32, false>(a, r, c0, c1);
      break;
    case DType::kFloat16:
      if (a.stream) silu_mul_range_t<V, DType::kFloat16, true>(a, r, c0, c1);
      else silu_mul_range_t<V, DType::kFloat16, false>(a, r, c0, c1);
      break;
    case DType::kBFloat16:
      if (a.stream) silu_mul_range_t<V, DType::kBFloat16, true>(a, r, c0, c1);
      else silu_mul_range_t<V, DType::kBFloat16, false>(a, r, c0, c1);
      break;
  }
}
