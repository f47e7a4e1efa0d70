// AVX2 instantiation of the sampler's whole-vocabulary passes (compiled with -mavx2 -mfma -mf16c).
// AVX-512 machines run these too: passes over one L2-resident row gain little from 16 lanes.
#include <algorithm>
#include <limits>

#include "gelu_simd_avx2.h"
#include "sample.h"

namespace infercore {
namespace {
#include "vec_exp_impl.h"

struct SampleAvx2Ops : GeluAvx2 {
  struct DSum {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  };
  static int nan_bits(F v) { return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)); }
  static float hmax(F a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
  }
  static F ge(F v, F t) { return _mm256_cmp_ps(v, t, _CMP_GE_OQ); }  // false for NaN
  static unsigned bits(F mask) { return static_cast<unsigned>(_mm256_movemask_ps(mask)); }
  static void add_d(DSum& a, F e) {
    a.lo = _mm256_add_pd(a.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    a.hi = _mm256_add_pd(a.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  static double sum(const DSum& a) {
    const __m256d s = _mm256_add_pd(a.lo, a.hi);
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
  }
};

#include "sample_impl.h"
}  // namespace

SampleScan sample_scan_avx2(const float* x, int64_t n) { return sample_scan<SampleAvx2Ops>(x, n); }

double sample_total_avx2(const float* x, int64_t n, float m, float inv_t) {
  return sample_total<SampleAvx2Ops>(x, n, m, inv_t);
}

int64_t sample_collect_avx2(const float* x, int64_t n, float tau, int32_t* ids) {
  return sample_collect<SampleAvx2Ops>(x, n, tau, ids);
}

}  // namespace infercore
