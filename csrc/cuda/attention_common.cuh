// Device helpers shared by the paged KV cache kernels (kv_cache.cu, attention_decode.cu,
// attention_prefill.cu): cache element types, 8/16/32-byte vector loads, dequantisation by bit
// tricks, and the writers' rounding (bit-identical to csrc/cpu/kv_quant.h and core/dtype.h).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace infercore {
namespace cuda {
namespace attn {

// Cache dtype codes (ops/attention.py CACHE_DTYPES, csrc/cpu/attention.h KvDType).
enum : int { kF32 = 0, kF16 = 1, kBF16 = 2, kFp8 = 3, kInt8 = 4 };

template <int DT> struct KvT { static constexpr int esz = DT == kF32 ? 4 : (DT == kF16 || DT == kBF16) ? 2 : 1; };

// VEC elements of a cache row as raw 32-bit words (VEC * esz is 8, 16 or 32 bytes).
template <int DT, int VEC> struct Raw {
  static constexpr int kBytes = VEC * KvT<DT>::esz;
  static constexpr int kWords = kBytes / 4;
  static_assert(kBytes == 8 || kBytes == 16 || kBytes == 32, "8-, 16- or 32-byte vectors");
  uint32_t w[kWords];
};

template <int DT, int VEC>
__device__ __forceinline__ void load_raw(const void* p, Raw<DT, VEC>& r) {
  if constexpr (Raw<DT, VEC>::kBytes == 8) {
    const uint2 a = __ldg(static_cast<const uint2*>(p));
    r.w[0] = a.x;
    r.w[1] = a.y;
  } else {
#pragma unroll
    for (int i = 0; i < Raw<DT, VEC>::kWords / 4; ++i) {
      const uint4 a = __ldg(static_cast<const uint4*>(p) + i);
      r.w[4 * i] = a.x;
      r.w[4 * i + 1] = a.y;
      r.w[4 * i + 2] = a.z;
      r.w[4 * i + 3] = a.w;
    }
  }
}

// Raw words -> float32. fp8 E4M3 comes back divided by 256 (its 7 low bits moved under a
// binary16 exponent whose bias is 8 larger: exact, subnormals included; callers fold the 256
// into the scales, as the CPU kernels do); int8 comes back exact via the 2^23 magic number.
template <int DT, int VEC>
__device__ __forceinline__ void dequant(const Raw<DT, VEC>& r, float* f) {
#pragma unroll
  for (int i = 0; i < Raw<DT, VEC>::kWords; ++i) {
    const uint32_t w = r.w[i];
    if constexpr (DT == kF32) {
      f[i] = __uint_as_float(w);
    } else if constexpr (DT == kF16) {
      const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&w));
      f[2 * i] = x.x;
      f[2 * i + 1] = x.y;
    } else if constexpr (DT == kBF16) {
      f[2 * i] = __uint_as_float(w << 16);
      f[2 * i + 1] = __uint_as_float(w & 0xFFFF0000u);
    } else if constexpr (DT == kFp8) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const uint32_t t = __byte_perm(w, 0u, j == 0 ? 0x1404u : 0x3424u);  // [0, b, 0, b'] per 16-bit lane
        const uint32_t h = (t & 0x80008000u) | ((t >> 1) & 0x3F803F80u);    // sign | eeeemmm << 7
        const float2 x = __half22float2(*reinterpret_cast<const __half2*>(&h));
        f[4 * i + 2 * j] = x.x;
        f[4 * i + 2 * j + 1] = x.y;
      }
    } else {  // int8: byte ^ 0x80 = value + 128 into the mantissa of 2^23, minus 2^23 + 128
      const uint32_t u = w ^ 0x80808080u;
#pragma unroll
      for (int j = 0; j < 4; ++j)
        f[4 * i + j] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7650u + j)) - 8388736.f;
    }
  }
}

// cp.async (sm_80+): a 4-, 8- or 16-byte global -> shared copy that bypasses the registers;
// src_bytes 0 zero-fills the destination without reading (the source must still be a valid address).
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
template <int BYTES>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool pred) {
  const int n = pred ? BYTES : 0;
  if constexpr (BYTES == 16)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(n) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(smem_u32(dst)), "l"(src), "n"(BYTES), "r"(n)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// ---------------------------------------------------------------- writers (reshape_and_cache)
// float32 -> E4M3FN, round-to-nearest-even, saturating (csrc/cpu/kv_quant.h fp8_e4m3_encode).
__device__ __forceinline__ uint32_t fp8_e4m3_encode(float x) {
  const uint32_t u = __float_as_uint(x);
  const uint32_t sign = (u >> 24) & 0x80u;
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7Fu;
  const float af = __uint_as_float(a);
  if (af >= 448.f) return sign | 0x7Eu;
  if (af < 0.015625f) return sign | static_cast<uint32_t>(rintf(af * 512.f));  // subnormal grid 2^-9
  const uint32_t r = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
  const uint32_t code = r - ((127u - 7u) << 3);
  return sign | (code > 0x7Eu ? 0x7Eu : code);
}

// float32 -> binary16 bits, nearest-even; NaN keeps its payload like core/dtype.h float_to_half.
__device__ __forceinline__ uint32_t f32_to_f16_bits(float x) {
  const uint32_t u = __float_as_uint(x);
  const uint32_t ax = u & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return ((u >> 16) & 0x8000u) | 0x7C00u | 0x200u | ((ax >> 13) & 0x3FFu);
  return static_cast<uint32_t>(__half_as_ushort(__float2half_rn(x)));
}

// float32 -> bfloat16 bits, nearest-even; NaN quieted as core/dtype.h float_to_bf16 does.
__device__ __forceinline__ uint32_t f32_to_bf16_bits(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return ((u >> 16) | 0x40u) & 0xFFFFu;
  u += 0x7FFFu + ((u >> 16) & 1u);
  return u >> 16;
}

// A query/input element (0 float32, 1 float16, 2 bfloat16) as float32.
__device__ __forceinline__ float load_in(const void* p, int dtype, int64_t i) {
  if (dtype == 0) return static_cast<const float*>(p)[i];
  const unsigned short b = static_cast<const unsigned short*>(p)[i];
  if (dtype == 1) return __half2float(__ushort_as_half(b));
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
}

// Error flags the kernels raise when an index they were given is out of range (they never
// dereference it): the launchers' callers validate on the host first, so these only fire when
// the native entry is called directly with bad indices.
enum : int { kErrBlockId = 1, kErrSeqLen = 2, kErrSlot = 4, kErrQueryLoc = 8 };
__device__ __forceinline__ void raise_flag(int* err, int bit) {
  if (err != nullptr) atomicOr(err, bit);
}

__device__ __forceinline__ int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

}  // namespace attn
}  // namespace cuda
}  // namespace infercore
