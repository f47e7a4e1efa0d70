// AVX-512 VNNI instantiation of the paged attention inner kernel for int8 caches (integer dot
// products, attn_simd_avx512vnni.h). Compiled with the AVX-512 flags and -mavx512vnni;
// attention.cpp picks it only for int8 caches on a CPU with VNNI.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention.h"
#include "attn_simd_avx512vnni.h"
#include "attn_simd_scalar.h"

namespace infercore {
namespace {
#include "attention_impl.h"
}  // namespace

void attend_rows_avx512vnni(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke,
                            const AttnRows& r) {
  if (c.dtype != KvDType::kInt8) return attend_rows_avx512(c, bt, h, kb, ke, r);
  attend_rows_t<AttnAvx512Vnni, KvDType::kInt8>(c, bt, h, kb, ke, r);
}

}  // namespace infercore
