// AVX-512 instantiation of the paged attention inner kernel (compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512dq and the AVX2 flags).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention.h"
#include "attn_simd_avx512.h"
#include "attn_simd_scalar.h"
#include "kv_quant.h"

namespace infercore {
namespace {
#include "attention_impl.h"
#include "kv_store_impl.h"
#include "encoder_attention_impl.h"
}  // namespace

void attend_rows_avx512(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke, const AttnRows& r) {
  attend_rows_dispatch<AttnAvx512>(c, bt, h, kb, ke, r);
}

float store_kv_row_avx512(const float* x, int64_t D, KvDType dt, float inv, void* dst) {
  return store_kv_row(x, D, dt, inv, dst);
}

void encoder_attend_avx512(const float* qkv, int64_t H, int64_t D, int64_t first, int64_t L, int64_t h0,
                         int64_t h1, float scale, float* out, std::vector<float>& scratch) {
  encoder_attend<AttnAvx512>(qkv, H, D, first, L, h0, h1, scale, out, scratch);
}

}  // namespace infercore
