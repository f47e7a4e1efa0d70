// AVX-512 instantiation of the GELU kernels (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq and the AVX2 flags).
#include <algorithm>
#include <cstring>

#include "gelu.h"
#include "gelu_simd_avx512.h"

namespace infercore {
namespace {
#include "gelu_impl.h"
}  // namespace

void gelu_range_avx512(const GeluArgs& a, int64_t i0, int64_t i1) { gelu_range_dispatch<GeluAvx512>(a, i0, i1); }

}  // namespace infercore
