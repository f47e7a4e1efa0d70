// Vectorised exponential shared by the elementwise kernels (gelu_impl.h, silu_and_mul_impl.h),
// written once over a primitive set V (GeluScalar, GeluAvx2 or GeluAvx512: set1, mul, fmadd, max,
// sub, round, pow2). Included textually inside each ISA translation unit's anonymous namespace,
// after the gelu_simd_<isa>.h header, so every instantiation has internal linkage.
#pragma once

// e^y for y <= 0 (NaN is not expected: callers carry NaN through another path), relative error
// ~1e-7, with IEEE underflow: subnormal results round once and y < -103.97 gives exactly 0.
// y = k ln2 + r (Cody-Waite split), e^r by its Taylor series to degree 7 (|r| <= 0.347, truncation
// 5.5e-9 relative), then 2^k applied as 2^k1 * 2^k2 (k1 = max(k, -125) keeps p * 2^k1 normal and
// exact; k2 = k - k1 >= -126 for y >= -174).
template <class V>
inline typename V::F exp_nonpos(typename V::F y) {
  using F = typename V::F;
  y = V::max(y, V::set1(-174.f));
  const F k = V::round(V::mul(y, V::set1(1.44269504f)));
  F r = V::fmadd(k, V::set1(-0.693359375f), y);
  r = V::fmadd(k, V::set1(2.12194440e-4f), r);
  F p = V::set1(1.f / 5040.f);
  p = V::fmadd(p, r, V::set1(1.f / 720.f));
  p = V::fmadd(p, r, V::set1(1.f / 120.f));
  p = V::fmadd(p, r, V::set1(1.f / 24.f));
  p = V::fmadd(p, r, V::set1(1.f / 6.f));
  p = V::fmadd(p, r, V::set1(0.5f));
  p = V::fmadd(p, r, V::set1(1.f));
  p = V::fmadd(p, r, V::set1(1.f));
  const F k1 = V::max(k, V::set1(-125.f));
  const F k2 = V::sub(k, k1);
  return V::mul(V::mul(p, V::pow2(k1)), V::pow2(k2));
}
