// Avx512 instantiation of the linear kernels (per-file ISA flags from CMakeLists.txt).
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "fp8.h"
#include "linear.h"
#include "quant_simd_avx512.h"
#include "thread_buffer.h"

namespace infercore {
namespace {
#include "linear_impl.h"
}  // namespace

void linear_tile_avx512(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  linear_tile_dispatch<QAvx512>(a, qa, m0, m1, n0, n1);
}

void quant_rows8_avx512(const float* x, int64_t K, int64_t kp, bool per_row, int64_t m0, int64_t m1, int8_t* q,
                        float* d, float* ds) {
  quant_rows8<QAvx512>(x, K, kp, per_row, m0, m1, q, d, ds);
}

void quant_rows16_avx512(const float* x, int64_t K, int64_t kp2, int64_t m0, int64_t m1, int16_t* q, float* d) {
  quant_rows16<QAvx512>(x, K, kp2, m0, m1, q, d);
}

}  // namespace infercore
