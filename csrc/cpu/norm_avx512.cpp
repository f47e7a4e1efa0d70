// AVX-512 instantiation of the norm kernels (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq and the AVX2 flags).
#include <cmath>

#include "norm.h"
#include "simd_avx512.h"

namespace infercore {
namespace {
#include "norm_impl.h"
}  // namespace

void norm_rows_avx512(NormKind kind, const NormArgs& a, int64_t r0, int64_t r1) {
  norm_rows_dispatch<VecAvx512>(kind, a, r0, r1);
}

void layer_norm_rows_avx512(const LayerNormArgs& a, int64_t r0, int64_t r1, float* scratch) {
  layer_norm_rows<VecAvx512>(a, r0, r1, scratch);
}

}  // namespace infercore
