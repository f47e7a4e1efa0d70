// Quantize-on-write of one (token, kv head) row into the paged cache, written once and compiled
// per ISA (attention.cpp, attention_avx2.cpp, attention_avx512.cpp; included inside their
// anonymous namespace after kv_quant.h). Every level stores the same bytes: the scalar encoders
// are exact (float_to_half, float_to_bf16 and fp8_e4m3_encode round to nearest-even with integer
// arithmetic; int8 rounds with nearbyint), the ISA builds only make them cheap: F16C converts
// eight halves per instruction with the same rounding, and int8 rows and fp8 codes go eight
// values per step with the scalar steps on vector lanes (int8_quantize_row_avx2,
// fp8_encode8_avx2).
//
// Napkin math: a decode step of 16 sequences writes 16 x 2 x Hkv x D elements per layer (6144
// for SmolLM2): measured 26 us per layer with the scalar half encoder, 2.5 us with F16C (int8
// 31 -> 4.8 us, fp8 22 -> 5 us); a 481-token prefill 320 -> 26 us (int8 590 -> 55 us, fp8
// 236 -> 47 us) per layer.

#if defined(__AVX2__)
// kv_quant.h's int8_quantize_row, eight values per step: the same absmax (max ignores NaN like
// fmax, and max is exact in any order), the same scale and inverse, nearest-even rounding,
// clamping and NaN -> 0, so the same bytes.
inline float int8_quantize_row_avx2(const float* x, int64_t n, int8_t* q) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask), vmax);
  float lanes[8];
  _mm256_storeu_ps(lanes, vmax);
  float amax = 0.f;
  for (float l : lanes) amax = std::fmax(amax, l);
  for (; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float scale = int8_row_scale(amax);
  const float inv = 1.f / scale;
  const __m256 vi = _mm256_set1_ps(inv), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
  for (i = 0; i + 8 <= n; i += 8) {
    __m256 v = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 ordered = _mm256_cmp_ps(v, v, _CMP_ORD_Q);
    v = _mm256_and_ps(_mm256_max_ps(_mm256_min_ps(v, hi), lo), ordered);  // NaN -> 0
    const __m256i w = _mm256_cvtps_epi32(v);
    const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packs_epi16(h, h));
  }
  for (; i < n; ++i) q[i] = int8_code(x[i], inv);
  return scale;
}

// kv_quant.h's fp8_e4m3_encode on eight lanes, the same integer steps: NaN -> 0x7F, |x| >= 448
// -> 0x7E, below 2^-6 the subnormal grid (x * 512 rounded to nearest-even: cvtps_epi32 in the
// default rounding mode), else the float32 mantissa rounded to 3 bits (nearest-even) and
// rebiased; the sign byte on top.
inline void fp8_encode8_avx2(__m256 x, uint8_t* out) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7FFFF)), odd), 20);
  const __m256i normal = _mm256_min_epi32(_mm256_sub_epi32(r, _mm256_set1_epi32((127 - 7) << 3)), _mm256_set1_epi32(0x7E));
  const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(512.f)));
  __m256i code = _mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3C800000), a));  // a < 2^-6
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7E), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43DFFFFF)));  // >= 448
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7F), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7F800000)));  // NaN
  code = _mm256_or_si256(code, sign);
  const __m128i h = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(h, h));
}
#endif

inline float store_kv_row(const float* x, int64_t D, KvDType dt, float inv, void* dst) {
  switch (dt) {
    case KvDType::kFloat32:
      for (int64_t d = 0; d < D; ++d) static_cast<float*>(dst)[d] = x[d] * inv;
      return 1.f;
    case KvDType::kFloat16: {
      uint16_t* o = static_cast<uint16_t*>(dst);
      int64_t d = 0;
#if defined(__F16C__) && defined(__AVX__)  // the AVX2 and AVX-512 translation units
      const __m256 vi = _mm256_set1_ps(inv);
      for (; d + 8 <= D; d += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(x + d), vi), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + d), h);
      }
#endif
      for (; d < D; ++d) o[d] = float_to_half(x[d] * inv);
      return 1.f;
    }
    case KvDType::kBFloat16:
      for (int64_t d = 0; d < D; ++d) static_cast<uint16_t*>(dst)[d] = float_to_bf16(x[d] * inv);
      return 1.f;
    case KvDType::kFp8E4m3: {
      uint8_t* o = static_cast<uint8_t*>(dst);
      int64_t d = 0;
#if defined(__AVX2__)
      const __m256 vi = _mm256_set1_ps(inv);
      for (; d + 8 <= D; d += 8) fp8_encode8_avx2(_mm256_mul_ps(_mm256_loadu_ps(x + d), vi), o + d);
#endif
      for (; d < D; ++d) o[d] = fp8_e4m3_encode(x[d] * inv);
      return 1.f;
    }
    case KvDType::kInt8:
#if defined(__AVX2__)
      return int8_quantize_row_avx2(x, D, static_cast<int8_t*>(dst));
#else
      return int8_quantize_row(x, D, static_cast<int8_t*>(dst));
#endif
  }
  return 1.f;
}
