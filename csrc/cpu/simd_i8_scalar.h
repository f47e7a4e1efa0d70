// int8 dot-product primitives, one element per "vector": the scalar level of the int8 top-k
// kernel. Same interface as I8Avx2 (simd_i8_avx2.h) and I8Avx512 (simd_i8_avx512.h).
// The products are formed as |c| * (q with c's sign), the shape the SIMD units need
// (unsigned x signed bytes); with q in [-127, 127] no step can overflow.
#pragma once
#include <cstdint>

namespace infercore {
namespace {

struct I8Scalar {
  static constexpr int W = 1;
  static constexpr bool kBiased = false;  // see I8Avx512Vnni
  using I = int32_t;
  static I zero() { return 0; }
  static I load(const int8_t* p) { return *p; }
  static I absv(I c) { return c < 0 ? -c : c; }
  static I signq(I q, I c) { return c < 0 ? -q : q; }
  static I dot(I acc, I u, I s) { return acc + u * s; }
  static int32_t hsum(I v) { return v; }
};

}  // namespace
}  // namespace infercore
