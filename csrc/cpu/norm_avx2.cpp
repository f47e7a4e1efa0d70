// AVX2 instantiation of the norm kernels (compiled with -mavx2 -mfma -mf16c).
#include <cmath>

#include "norm.h"
#include "simd_avx2.h"

namespace infercore {
namespace {
#include "norm_impl.h"
}  // namespace

void norm_rows_avx2(NormKind kind, const NormArgs& a, int64_t r0, int64_t r1) {
  norm_rows_dispatch<VecAvx2>(kind, a, r0, r1);
}

void layer_norm_rows_avx2(const LayerNormArgs& a, int64_t r0, int64_t r1, float* scratch) {
  layer_norm_rows<VecAvx2>(a, r0, r1, scratch);
}

}  // namespace infercore
