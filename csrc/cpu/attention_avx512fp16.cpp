// AVX-512 FP16 instantiation of the paged attention inner kernel for fp8 caches (float16
// arithmetic, attn_simd_avx512fp16.h). Compiled with the AVX-512 flags and -mavx512fp16;
// attention.cpp picks it only for fp8 caches on a CPU with AVX512-FP16.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention.h"
#include "attn_simd_avx512fp16.h"
#include "attn_simd_scalar.h"

namespace infercore {
namespace {
#include "attention_impl.h"
}  // namespace

void attend_rows_avx512fp16(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke,
                            const AttnRows& r) {
  if (c.dtype != KvDType::kFp8E4m3) return attend_rows_avx512(c, bt, h, kb, ke, r);
  attend_rows_t<AttnAvx512Fp16, KvDType::kFp8E4m3>(c, bt, h, kb, ke, r);
}

}  // namespace infercore
