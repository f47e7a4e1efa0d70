// AVX2 instantiation of the GELU kernels (compiled with -mavx2 -mfma -mf16c).
#include <algorithm>
#include <cstring>

#include "gelu.h"
#include "gelu_simd_avx2.h"

namespace infercore {
namespace {
#include "gelu_impl.h"
}  // namespace

void gelu_range_avx2(const GeluArgs& a, int64_t i0, int64_t i1) { gelu_range_dispatch<GeluAvx2>(a, i0, i1); }

}  // namespace infercore
