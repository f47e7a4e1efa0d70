// AVX2 instantiation of the silu_and_mul kernel (compiled with -mavx2 -mfma -mf16c).
#include <algorithm>
#include <cstring>

#include "gelu_simd_avx2.h"
#include "silu_and_mul.h"

namespace infercore {
namespace {
#include "vec_exp_impl.h"
#include "silu_and_mul_impl.h"
}  // namespace

void silu_and_mul_range_avx2(const SiluMulArgs& a, int64_t r, int64_t c0, int64_t c1) {
  silu_mul_range_dispatch<GeluAvx2>(a, r, c0, c1);
}

}  // namespace infercore
