// AVX-512 VNNI instantiation of the linear kernels: the AVX-512 ops with the integer block dots
// done by vpdpbusd (u8 x s8 -> s32, no int16 saturation step). Picked by linear_forward only
// when cpu_features().avx512_vnni; otherwise the plain AVX-512 variant runs. The file gets the
// AVX-512 flags from CMake (it matches *_avx512.cpp) and adds VNNI for itself here.
#pragma GCC target("avx512vnni")
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

struct QAvx512Vnni : QAvx512 {
  // Same operands as the sign trick (|w| unsigned, x with w's sign), one instruction.
  static IAcc dot_ss(I w, I x) {
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
  }
  static IAcc dot_us(I w, I x) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x); }
  static P pmadd(P acc, P a, P b) { return _mm512_dpwssd_epi32(acc, a, b); }  // int16 pairs, one instruction
  // interleaved 8-row block dots straight into int32 lanes (S8 holds int32 sums here)
  static S8 r8_dot(S8 acc, G8 w, const int8_t* x4) { return _mm256_dpbusd_epi32(acc, w, bcast4(x4)); }
  static R8 r8_sum(S8 acc) { return _mm256_cvtepi32_ps(acc); }
  static S8 r8_dot_s(S8 acc, G8 wa, G8 ws, const int8_t* x4) {
    return _mm256_dpbusd_epi32(acc, wa, _mm256_sign_epi8(bcast4(x4), ws));
  }
};

#include "linear_impl.h"
}  // namespace

void linear_tile_avx512vnni(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  linear_tile_dispatch<QAvx512Vnni>(a, qa, m0, m1, n0, n1);
}

}  // namespace infercore
