// AVX2 instantiation of the top-k scan (compiled with -mavx2 -mfma -mf16c).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../core/dtype.h"
#include "simd_avx2.h"
#include "simd_i8_avx2.h"
#include "topk.h"

namespace infercore {
namespace {
#include "topk_buffer.h"
#include "topk_impl.h"
}  // namespace

void topk_scan_avx2(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                    const TopkScratch& sc) {
  topk_scan_dispatch<VecAvx2, I8Avx2>(w, q0, q1, p0, p1, lists, sc);
}

}  // namespace infercore
