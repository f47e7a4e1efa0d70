// AVX-512 VNNI instantiation of the top-k scan (the AVX-512 flags plus -mavx512vnni, see
// CMakeLists.txt); the dispatcher uses it for int8 corpora when cpu_features().avx512_vnni.
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

void topk_scan_avx512vnni(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                          const TopkScratch& sc) {
  // Only int8 corpora come here; the float paths are the same as in topk_avx512.cpp.
  TopkKernel<VecAvx512, I8Avx512Vnni, CorpusType::kInt8>::scan(w, q0, q1, p0, p1, lists, sc);
}

}  // namespace infercore
