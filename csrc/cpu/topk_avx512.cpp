// AVX-512 (F/BW/VL/DQ) instantiation of the top-k scan; int8 uses BW maddubs + madd.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/dtype.h"
#include "simd_avx512.h"
#include "simd_i8_avx512.h"
#include "topk.h"

namespace infercore {
namespace {
#include "topk_buffer.h"
#include "topk_impl.h"
}  // namespace

void topk_scan_avx512(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                      const TopkScratch& sc) {
  topk_scan_dispatch<VecAvx512, I8Avx512>(w, q0, q1, p0, p1, lists, sc);
}

}  // namespace infercore
