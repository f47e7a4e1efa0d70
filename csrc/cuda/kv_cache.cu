// reshape_and_cache on CUDA: write token t's K/V rows ([T, Hkv, D] float32/float16/bfloat16) into
// the paged caches at slot_mapping[t] (-1 skips), converting to the cache dtype: float caches
// store x / scale, fp8 E4M3 stores x / scale rounded to nearest-even and saturated at +-448,
// int8 stores rint(x / s) with s = absmax / 127 per (token, head), s written beside the blocks.
// The rounding is bit-identical to the CPU writer (csrc/cpu/attention.cpp + kv_quant.h).
//
// Mapping: one thread per (token, head, 8-element chunk) — a 16-byte load of float16 input, a
// 16-byte store into a float16 cache (8 bytes for fp8/int8, 32 for float32); the int8 absmax is
// a shuffle-xor reduction over the D / 8 threads of a row (D / 8 a power of two <= 32, which every
// common head size is). Any other D (or misaligned pointers) takes a warp-per-row fallback.
//
// Napkin math: T x Hkv x D x (in + out bytes), ~5 integer ops per element for fp8: a few MB per
// prefill step, bound by HBM bandwidth and launch latency (~3 us). Not on the critical path.
//
// Status: compiled for sm_80 / sm_90 without spills; not yet run on a GPU (none was available
// when this was written) — tests/gpu/test_attention_cuda.py checks it byte for byte against
// the CPU writer.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "attention_common.cuh"
#include "attention_launch.h"
#include "launch.h"

namespace infercore {
namespace cuda {
namespace {
using namespace attn;

struct WriteParams {
  const void* k;
  const void* v;
  const int64_t* slots;
  void* kc;
  void* vc;
  float* ks;  // int8 only
  float* vs;
  float kinv, vinv;
  int64_t num_tokens, num_slots;
  int H, D;
  int src_dtype;
  int* err;
};

__device__ __forceinline__ void load8(const void* base, int dtype, int64_t i, float* x) {
  if (dtype == 0) {
    const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(base) + i + 4);
    x[0] = a.x; x[1] = a.y; x[2] = a.z; x[3] = a.w;
    x[4] = b.x; x[5] = b.y; x[6] = b.z; x[7] = b.w;
  } else {
    const uint4 a = *reinterpret_cast<const uint4*>(static_cast<const unsigned short*>(base) + i);
    const uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (dtype == 1) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[j]));
        x[2 * j] = f.x;
        x[2 * j + 1] = f.y;
      } else {
        x[2 * j] = __uint_as_float(w[j] << 16);
        x[2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
      }
    }
  }
}

__device__ __forceinline__ uint32_t pack_bytes(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a & 0xFFu) | ((b & 0xFFu) << 8) | ((c & 0xFFu) << 16) | ((d & 0xFFu) << 24);
}

__device__ __forceinline__ uint32_t int8_code(float x, float inv) {
  float q = rintf(x * inv);
  q = q > 127.f ? 127.f : (q < -127.f ? -127.f : q);
  return static_cast<uint32_t>(static_cast<int32_t>(q)) & 0xFFu;
}

// Store 8 converted elements at element offset i of the cache. `C` threads (one row) reduce the
// int8 absmax together; every thread of the warp calls this (the shuffles need them all).
template <int DT>
__device__ __forceinline__ void store8(void* cache, float* scales, int64_t scale_at, int64_t i, const float* x,
                                       float inv, bool ok, int C, bool first) {
  if constexpr (DT == kF32) {
    if (!ok) return;
    float* p = static_cast<float*>(cache) + i;
    *reinterpret_cast<float4*>(p) = make_float4(x[0] * inv, x[1] * inv, x[2] * inv, x[3] * inv);
    *reinterpret_cast<float4*>(p + 4) = make_float4(x[4] * inv, x[5] * inv, x[6] * inv, x[7] * inv);
  } else if constexpr (DT == kF16 || DT == kBF16) {
    if (!ok) return;
    uint32_t w[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t lo = DT == kF16 ? f32_to_f16_bits(x[2 * j] * inv) : f32_to_bf16_bits(x[2 * j] * inv);
      const uint32_t hi = DT == kF16 ? f32_to_f16_bits(x[2 * j + 1] * inv) : f32_to_bf16_bits(x[2 * j + 1] * inv);
      w[j] = lo | (hi << 16);
    }
    *reinterpret_cast<uint4*>(static_cast<unsigned short*>(cache) + i) = make_uint4(w[0], w[1], w[2], w[3]);
  } else if constexpr (DT == kFp8) {
    if (!ok) return;
    uint32_t c[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j] = fp8_e4m3_encode(x[j] * inv);
    *reinterpret_cast<uint2*>(static_cast<uint8_t*>(cache) + i) =
        make_uint2(pack_bytes(c[0], c[1], c[2], c[3]), pack_bytes(c[4], c[5], c[6], c[7]));
  } else {  // int8
    float amax = 0.f;
#pragma unroll
    for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(x[j]));
    for (int o = C >> 1; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
    if (!ok) return;
    const float s = amax > 0.f ? amax / 127.f : 1.f;
    const float q = 1.f / s;
    uint32_t c[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) c[j] = int8_code(x[j], q);
    *reinterpret_cast<uint2*>(static_cast<uint8_t*>(cache) + i) =
        make_uint2(pack_bytes(c[0], c[1], c[2], c[3]), pack_bytes(c[4], c[5], c[6], c[7]));
    if (first) scales[scale_at] = s;
  }
}

// One thread per (token, head, 8-element chunk); C = D / 8 is a power of two <= 32.
template <int DT>
__global__ void __launch_bounds__(256) write_vec_kernel(WriteParams p, int log2c) {
  const int C = 1 << log2c;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t row = i >> log2c;  // token * H + head
  const int chunk = static_cast<int>(i & (C - 1));
  const int64_t rows = p.num_tokens * p.H;
  bool ok = row < rows;
  int64_t slot = -1;
  if (ok) {
    slot = p.slots[row / p.H];
    if (slot < -1 || slot >= p.num_slots) {
      if (chunk == 0) raise_flag(p.err, kErrSlot);
      ok = false;
    } else if (slot < 0) {
      ok = false;
    }
  }
  const int h = ok ? static_cast<int>(row % p.H) : 0;
  const int64_t src = row * p.D + chunk * 8;
  const int64_t dst = (slot * p.H + h) * p.D + chunk * 8;
  float x[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  if (ok) load8(p.k, p.src_dtype, src, x);
  store8<DT>(p.kc, p.ks, slot * p.H + h, dst, x, p.kinv, ok, C, chunk == 0);
  if (ok) load8(p.v, p.src_dtype, src, x);
  store8<DT>(p.vc, p.vs, slot * p.H + h, dst, x, p.vinv, ok, C, chunk == 0);
}

// Fallback for any D / alignment: one warp per (token, head) row, element by element.
template <int DT>
__device__ __forceinline__ void store1(void* cache, int64_t i, float y) {
  if constexpr (DT == kF32) static_cast<float*>(cache)[i] = y;
  else if constexpr (DT == kF16) static_cast<unsigned short*>(cache)[i] = static_cast<unsigned short>(f32_to_f16_bits(y));
  else if constexpr (DT == kBF16) static_cast<unsigned short*>(cache)[i] = static_cast<unsigned short>(f32_to_bf16_bits(y));
  else static_cast<uint8_t*>(cache)[i] = static_cast<uint8_t>(fp8_e4m3_encode(y));
}

template <int DT>
__global__ void __launch_bounds__(256) write_row_kernel(WriteParams p) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= p.num_tokens * p.H) return;  // whole warps leave together
  const int64_t slot = p.slots[row / p.H];
  if (slot < -1 || slot >= p.num_slots) {
    if (lane == 0) raise_flag(p.err, kErrSlot);
    return;
  }
  if (slot < 0) return;
  const int h = static_cast<int>(row % p.H);
  const int64_t src = row * p.D, dst = (slot * p.H + h) * p.D;
  for (int which = 0; which < 2; ++which) {
    const void* in = which ? p.v : p.k;
    void* cache = which ? p.vc : p.kc;
    const float inv = which ? p.vinv : p.kinv;
    if constexpr (DT == kInt8) {
      float amax = 0.f;
      for (int d = lane; d < p.D; d += 32) amax = fmaxf(amax, fabsf(load_in(in, p.src_dtype, src + d)));
      for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, o));
      const float s = amax > 0.f ? amax / 127.f : 1.f;
      const float q = 1.f / s;
      for (int d = lane; d < p.D; d += 32)
        static_cast<uint8_t*>(cache)[dst + d] = static_cast<uint8_t>(int8_code(load_in(in, p.src_dtype, src + d), q));
      if (lane == 0) (which ? p.vs : p.ks)[slot * p.H + h] = s;
    } else {
      for (int d = lane; d < p.D; d += 32) store1<DT>(cache, dst + d, load_in(in, p.src_dtype, src + d) * inv);
    }
  }
}

template <int DT>
void launch_write(const WriteParams& p, bool vec, cudaStream_t s) {
  const int threads = 256;
  if (vec) {
    int log2c = 0;
    while ((8 << log2c) < p.D) ++log2c;
    const int64_t total = p.num_tokens * p.H * (int64_t{1} << log2c);
    write_vec_kernel<DT><<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, s>>>(p, log2c);
  } else {
    const int64_t total = p.num_tokens * p.H * 32;
    write_row_kernel<DT><<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, s>>>(p);
  }
}

bool aligned(uintptr_t p, uintptr_t a) { return p % a == 0; }

}  // namespace

void check_cache_dev(const KvCacheDev& c, bool need_scales);  // attention_decode.cu

void reshape_and_cache_launch(const ReshapeCacheDev& a) {
  const KvCacheDev& c = a.cache;
  check_cache_dev(c, true);
  if (a.num_tokens < 0) throw std::invalid_argument("k: negative number of tokens");
  if (a.src_dtype < 0 || a.src_dtype > 2) throw std::invalid_argument("k: dtype code must be 0, 1 or 2");
  if (a.num_tokens == 0) return;
  if (a.k == 0 || a.v == 0 || a.slot_mapping == 0) throw std::invalid_argument("k/v/slot_mapping: null device pointer");
  if (a.num_tokens * c.num_kv_heads * 32 > (int64_t{1} << 38))
    throw std::invalid_argument("k: too many tokens for one launch");
  WriteParams p;
  p.k = reinterpret_cast<const void*>(a.k);
  p.v = reinterpret_cast<const void*>(a.v);
  p.slots = reinterpret_cast<const int64_t*>(a.slot_mapping);
  p.kc = reinterpret_cast<void*>(c.k);
  p.vc = reinterpret_cast<void*>(c.v);
  p.ks = reinterpret_cast<float*>(c.k_scales);
  p.vs = reinterpret_cast<float*>(c.v_scales);
  p.kinv = 1.f / c.k_scale;  // float caches and fp8: the CPU writer multiplies by 1 / scale too
  p.vinv = 1.f / c.v_scale;
  p.num_tokens = a.num_tokens;
  p.num_slots = c.num_blocks * c.block_size;
  p.H = static_cast<int>(c.num_kv_heads);
  p.D = static_cast<int>(c.head_dim);
  p.src_dtype = a.src_dtype;
  p.err = reinterpret_cast<int*>(a.err);
  const int esz = c.dtype == kF32 ? 4 : (c.dtype == kF16 || c.dtype == kBF16) ? 2 : 1;
  const int in_sz = a.src_dtype == 0 ? 4 : 2;
  // Vector path: D / 8 a power of two <= 32 and every base aligned for 8-element accesses.
  const bool pow2 = c.head_dim % 8 == 0 && c.head_dim <= 256 && ((c.head_dim / 8) & (c.head_dim / 8 - 1)) == 0;
  const bool vec = pow2 && aligned(a.k, 8 * in_sz) && aligned(a.v, 8 * in_sz) && aligned(c.k, 8 * esz) &&
                   aligned(c.v, 8 * esz);
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(a.stream);
  switch (c.dtype) {
    case kF32: launch_write<kF32>(p, vec, s); break;
    case kF16: launch_write<kF16>(p, vec, s); break;
    case kBF16: launch_write<kBF16>(p, vec, s); break;
    case kFp8: launch_write<kFp8>(p, vec, s); break;
    default: launch_write<kInt8>(p, vec, s); break;
  }
  check_launch("reshape_and_cache");
}

}  // namespace cuda
}  // namespace infercore
