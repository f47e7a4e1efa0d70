// CUDA GEMV for ops.linear (M <= 8 activation rows, the decode case) over every QuantizedWeight
// kind, reading the packed weight bytes exactly as the host holds them. Above 8 rows the "cuda"
// backend runs the Triton GEMM (kernels/linear.py).
//
// Two launches on the caller's stream:
//  1. activation prep: int8 codes per token (int8 W8A8) or per block of 32 (int4, q8_0, q4_0,
//     q4_1), d = absmax / 127 (IEEE division), q = rint(x / d), a non-finite row/block gets
//     d = NaN (a NaN output row), exactly the CPU kernels' semantics; or, for the float kinds
//     with float16/bfloat16 x, a float32 copy of x. Writes M*K bytes (or 4*M*K): tiny.
//  2. gemv_kernel<KIND, MB>: 4 warps per block, each warp owns 2 output rows and streams them
//     once (16-byte loads for f32/f16/bf16/fp8/int8/int4; ggml rows are only 2- or 4-byte
//     aligned (34/18/20-byte blocks), so 4 lanes share a block with 4-byte loads), with all M
//     activation rows in registers/L1; dequantize in registers, dp4a for the integer kinds,
//     float32 accumulation, xor-shuffle reduction, bias and the store in x's dtype.
//
// Napkin math (H100 SXM ~3.35 TB/s HBM3): per call the weight bytes dominate (x and y are
// M*K and M*N elements). 4096 x 4096: int8 16.8 MB -> 5.0 us, q4_0 9.4 MB -> 2.8 us, int4
// 8.4 MB + 0.5 MB scales -> 2.7 us, fp16 33.5 MB -> 10 us; flops 2*M*N*K = 33.5 MFLOP per row
// of x (M=8: 268 MFLOP, still ~8 flop/byte for int8 vs ~300 the SM ALUs sustain): bandwidth
// bound for every kind up to M = 8. In flight per lane at M = 1: 2 rows x 8 chunks of 16 B
// (gemv_unroll), 8 KB per warp; with 512 blocks of 128 threads for N = 4096, ~16 warps per SM,
// i.e. ~128 KB in flight per SM, well above the ~25 KB latency x bandwidth product per SM.
//
// Status: ran on an H200 (stop 16: 21-87% of HBM at M = 1, 2 chunks per lane); the deeper
// unroll at M = 1 is checked by tests/gpu/test_linear_cuda.py and bench_linear --gpu-only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.h"
#include "linear_launch.h"

namespace infercore {
namespace cuda {
namespace {

enum Kind : int { kF32 = 0, kF16, kBF16, kFp8, kInt8, kInt4, kQ8_0, kQ4_0, kQ4_1 };

constexpr int kWarps = 4;  // warps per block
constexpr int kRows = 2;   // output rows per warp
// Chunks per lane per iteration, all loaded before any is used. At M = 1 a 4096-wide row is
// 8-16 chunks per lane: loading 8 at once makes a row ~1-2 HBM round trips instead of 4-8
// (2 per iteration measured 29% of HBM for int8 4096 x 4096 on an H200); with 8 activation rows
// the registers go to the accumulators instead.
__host__ __device__ constexpr int gemv_unroll(int kind, int mb) { return mb > 1 ? 2 : kind == kInt4 ? 4 : 8; }

__host__ __device__ constexpr bool is_block_kind(int kind) { return kind >= kInt4; }
__host__ __device__ constexpr bool quantized_acts(int kind) { return kind >= kInt8; }

__host__ __device__ constexpr int64_t row_bytes(int kind, int64_t K) {
  return kind == kF32 ? 4 * K
         : kind == kF16 || kind == kBF16 ? 2 * K
         : kind == kFp8 || kind == kInt8 ? K
         : kind == kInt4 ? K / 2
         : kind == kQ8_0 ? K / 32 * 34
         : kind == kQ4_0 ? K / 32 * 18
                         : K / 32 * 20;
}

struct GemvArgs {
  const char* w;
  const float* wscale;    // int8 / fp8: per out channel
  const __half* gscale;   // int4: [N, K / group]
  int gshift;             // int4: group = 32 << gshift
  const float* xf;        // float kinds: float32 x [M, K]
  const int8_t* xq;       // quantized kinds: codes [M, kp]
  const float* xd;        // their scales: [M] (int8) or [M, K / 32]
  int64_t kp;
  const float* bias;
  void* out;
  int out_dtype;
  int M;
  int64_t N, K, rb;
  bool vec;  // 16-byte vector path usable (alignment and K)
};

__device__ __forceinline__ float load_x(const void* x, int dt, int64_t i) {
  if (dt == 0) return static_cast<const float*>(x)[i];
  if (dt == 1) return __half2float(static_cast<const __half*>(x)[i]);
  return __bfloat162float(static_cast<const __nv_bfloat16*>(x)[i]);
}

__device__ __forceinline__ uint4 ld16(const char* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ uint32_t ld_u16x2(const char* p) {  // 4 bytes from a 2-byte aligned address
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return static_cast<uint32_t>(__ldg(h)) | (static_cast<uint32_t>(__ldg(h + 1)) << 16);
}
__device__ __forceinline__ float half_at(const char* p) {
  return __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short*>(p))));
}
__device__ __forceinline__ int word(const uint4& v, int j) {
  return static_cast<int>(j == 0 ? v.x : j == 1 ? v.y : j == 2 ? v.z : v.w);
}

// ---------------------------------------------------------------------- activation prep
__global__ void to_f32_kernel(const void* x, int dt, float* xf, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    xf[i] = load_x(x, dt, i);
}

__device__ __forceinline__ int8_t quant_one(float v, float d) {
  float q = d > 0.f ? rintf(v / d) : 0.f;
  q = fminf(127.f, fmaxf(-127.f, q));
  return static_cast<int8_t>(q);
}

// int8 W8A8: one block of 1024 threads per row, one scale per row. Each thread keeps up to
// kQuantRegs of its values in registers, so the row is read from memory once (longer rows
// re-read the rest) and the absmax loads are all issued before the first is used: the first
// version (256 threads, a dependent load per iteration, then a second pass over memory) took
// 10.7 us for one 4096-wide row on an H200, longer than the 16.8 MB GEMV that follows it.
constexpr int kQuantThreads = 1024;
constexpr int kQuantRegs = 8;
__global__ void __launch_bounds__(kQuantThreads) quant_rows_kernel(const void* x, int dt, int64_t K, int64_t kp,
                                                                   int8_t* xq, float* xd) {
  __shared__ float s_max[32];
  __shared__ int s_bad[32];
  const int64_t m = blockIdx.x;
  float v[kQuantRegs];
#pragma unroll
  for (int i = 0; i < kQuantRegs; ++i) {
    const int64_t k = threadIdx.x + static_cast<int64_t>(i) * kQuantThreads;
    v[i] = k < K ? load_x(x, dt, m * K + k) : 0.f;
  }
  float amax = 0.f;
  int bad = 0;
#pragma unroll
  for (int i = 0; i < kQuantRegs; ++i) {
    if (isfinite(v[i])) amax = fmaxf(amax, fabsf(v[i]));
    else bad = 1;
  }
  for (int64_t k = threadIdx.x + static_cast<int64_t>(kQuantRegs) * kQuantThreads; k < K; k += kQuantThreads) {
    const float t = load_x(x, dt, m * K + k);
    if (isfinite(t)) amax = fmaxf(amax, fabsf(t));
    else bad = 1;
  }
  for (int o = 16; o > 0; o >>= 1) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    bad |= __shfl_xor_sync(0xffffffffu, bad, o);
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) {
    s_max[warp] = amax;
    s_bad[warp] = bad;
  }
  __syncthreads();
  amax = 0.f;
  bad = 0;
  for (int i = 0; i < warps; ++i) {
    amax = fmaxf(amax, s_max[i]);
    bad |= s_bad[i];
  }
  const float d = amax / 127.f;
#pragma unroll
  for (int i = 0; i < kQuantRegs; ++i) {
    const int64_t k = threadIdx.x + static_cast<int64_t>(i) * kQuantThreads;
    if (k < kp) xq[m * kp + k] = (k < K && !bad) ? quant_one(v[i], d) : int8_t{0};
  }
  for (int64_t k = threadIdx.x + static_cast<int64_t>(kQuantRegs) * kQuantThreads; k < kp; k += kQuantThreads)
    xq[m * kp + k] = (k < K && !bad) ? quant_one(load_x(x, dt, m * K + k), d) : int8_t{0};
  if (threadIdx.x == 0) xd[m] = bad ? __int_as_float(0x7fc00000) : d;
}

// Block kinds: one warp per block of 32 values (K % 32 == 0, kp == K).
__global__ void quant_blocks_kernel(const void* x, int dt, int64_t K, int64_t total_blocks, int8_t* xq, float* xd) {
  const int64_t gb = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (gb >= total_blocks) return;
  const int64_t nb = K / 32, m = gb / nb, b = gb % nb;
  const float v = load_x(x, dt, m * K + b * 32 + lane);
  float amax = isfinite(v) ? fabsf(v) : 0.f;
  for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  const bool bad = __any_sync(0xffffffffu, !isfinite(v));
  const float d = amax / 127.f;
  xq[m * K + b * 32 + lane] = bad ? int8_t{0} : quant_one(v, d);
  if (lane == 0) xd[gb] = bad ? __int_as_float(0x7fc00000) : d;
}

// ---------------------------------------------------------------------- weight decoding
template <int KIND> struct FloatKind;
template <> struct FloatKind<kF32> {
  static constexpr int V = 4;  // values per 16 bytes
  __device__ static void decode(const uint4& r, float (&w)[V]) {
    w[0] = __uint_as_float(r.x); w[1] = __uint_as_float(r.y); w[2] = __uint_as_float(r.z); w[3] = __uint_as_float(r.w);
  }
  __device__ static float scalar(const char* row, int64_t k) { return __ldg(reinterpret_cast<const float*>(row) + k); }
};
template <> struct FloatKind<kF16> {
  static constexpr int V = 8;
  __device__ static void decode(const uint4& r, float (&w)[V]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t u = static_cast<uint32_t>(word(r, j));
      const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&u));
      w[2 * j] = f.x;
      w[2 * j + 1] = f.y;
    }
  }
  __device__ static float scalar(const char* row, int64_t k) {
    return __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short*>(row) + k)));
  }
};
template <> struct FloatKind<kBF16> {
  static constexpr int V = 8;
  __device__ static void decode(const uint4& r, float (&w)[V]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t u = static_cast<uint32_t>(word(r, j));
      w[2 * j] = __uint_as_float(u << 16);
      w[2 * j + 1] = __uint_as_float(u & 0xffff0000u);
    }
  }
  __device__ static float scalar(const char* row, int64_t k) {
    return __uint_as_float(static_cast<uint32_t>(__ldg(reinterpret_cast<const unsigned short*>(row) + k)) << 16);
  }
};
template <> struct FloatKind<kFp8> {  // E4M3FN values; the per-row scale is applied at the end
  static constexpr int V = 16;
  __device__ static float2 pair(uint32_t two) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two), __NV_E4M3);
    return __half22float2(__half2(h));
  }
  __device__ static void decode(const uint4& r, float (&w)[V]) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t u = static_cast<uint32_t>(word(r, j));
      const float2 a = pair(u & 0xffffu), b = pair(u >> 16);
      w[4 * j] = a.x; w[4 * j + 1] = a.y; w[4 * j + 2] = b.x; w[4 * j + 3] = b.y;
    }
  }
  __device__ static float scalar(const char* row, int64_t k) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(__ldg(
                                                     reinterpret_cast<const unsigned char*>(row) + k)), __NV_E4M3);
    return __half2float(__half(h));
  }
};

// ---------------------------------------------------------------------- the GEMV body per kind
template <int KIND, int MB>
__device__ __forceinline__ void rows_float(const GemvArgs& a, const char* const (&wr)[kRows], float (&acc)[MB][kRows],
                                           int lane) {
  using F = FloatKind<KIND>;
  constexpr int V = F::V;
  constexpr int kUnroll = gemv_unroll(KIND, MB);
  const int64_t nchunks = a.vec ? a.K / V : 0;
  for (int64_t c = lane; c < nchunks; c += 32 * kUnroll) {
    uint4 raw[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        raw[u][r] = c + u * 32 < nchunks ? ld16(wr[r] + (c + u * 32) * 16) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t cc = c + u * 32;
      if (cc >= nchunks) break;
      float w[kRows][V];
#pragma unroll
      for (int r = 0; r < kRows; ++r) F::decode(raw[u][r], w[r]);
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        if (m >= a.M) break;
        const float4* xp = reinterpret_cast<const float4*>(a.xf + m * a.K + cc * V);
#pragma unroll
        for (int v = 0; v < V / 4; ++v) {
          const float4 xv = xp[v];
#pragma unroll
          for (int r = 0; r < kRows; ++r) {
            float s = acc[m][r];
            s = fmaf(xv.x, w[r][4 * v], s);
            s = fmaf(xv.y, w[r][4 * v + 1], s);
            s = fmaf(xv.z, w[r][4 * v + 2], s);
            acc[m][r] = fmaf(xv.w, w[r][4 * v + 3], s);
          }
        }
      }
    }
  }
  for (int64_t k = nchunks * V + lane; k < a.K; k += 32) {  // tail, or everything when unaligned
    float wk[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wk[r] = F::scalar(wr[r], k);
#pragma unroll
    for (int m = 0; m < MB; ++m) {
      if (m >= a.M) break;
      const float xv = a.xf[m * a.K + k];
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[m][r] = fmaf(xv, wk[r], acc[m][r]);
    }
  }
}

template <int MB>
__device__ __forceinline__ void rows_int8(const GemvArgs& a, const char* const (&wr)[kRows], int (&acc)[MB][kRows],
                                          int lane) {
  constexpr int kUnroll = gemv_unroll(kInt8, MB);
  const int64_t nchunks = a.vec ? a.K / 16 : 0;
  for (int64_t c = lane; c < nchunks; c += 32 * kUnroll) {
    uint4 raw[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        raw[u][r] = c + u * 32 < nchunks ? ld16(wr[r] + (c + u * 32) * 16) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t cc = c + u * 32;
      if (cc >= nchunks) break;
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        if (m >= a.M) break;
        const uint4 xv = *reinterpret_cast<const uint4*>(a.xq + m * a.kp + cc * 16);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          int s = acc[m][r];
#pragma unroll
          for (int j = 0; j < 4; ++j) s = __dp4a(word(raw[u][r], j), word(xv, j), s);
          acc[m][r] = s;
        }
      }
    }
  }
  for (int64_t k = nchunks * 16 + lane; k < a.K; k += 32) {
    int wk[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wk[r] = static_cast<int>(reinterpret_cast<const int8_t*>(wr[r])[k]);
#pragma unroll
    for (int m = 0; m < MB; ++m) {
      if (m >= a.M) break;
      const int xv = a.xq[m * a.kp + k];
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[m][r] += wk[r] * xv;
    }
  }
}

// int4: one 32-value block (16 bytes: value i low nibble of byte i, value i + 16 the high nibble) per lane.
template <int MB>
__device__ __forceinline__ void rows_int4(const GemvArgs& a, int64_t n0, const char* const (&wr)[kRows],
                                          float (&acc)[MB][kRows], int lane) {
  constexpr int kUnroll = gemv_unroll(kInt4, MB);
  const int64_t nb = a.K / 32, gpr = a.K >> (5 + a.gshift);
  for (int64_t c = lane; c < nb; c += 32 * kUnroll) {
    uint4 raw[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int r = 0; r < kRows; ++r) raw[u][r] = c + u * 32 < nb ? ld16(wr[r] + (c + u * 32) * 16) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t b = c + u * 32;
      if (b >= nb) break;
      float dw[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t n = n0 + r < a.N ? n0 + r : a.N - 1;
        dw[r] = __half2float(a.gscale[n * gpr + (b >> a.gshift)]);
      }
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        if (m >= a.M) break;
        const uint4* xp = reinterpret_cast<const uint4*>(a.xq + m * a.kp + b * 32);
        const uint4 x0 = xp[0], x1 = xp[1];
        const float dx = a.xd[m * nb + b];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          int s = 0;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int v = word(raw[u][r], j);
            s = __dp4a(static_cast<int>(__vsub4(v & 0x0f0f0f0f, 0x08080808)), word(x0, j), s);
            s = __dp4a(static_cast<int>(__vsub4((v >> 4) & 0x0f0f0f0f, 0x08080808)), word(x1, j), s);
          }
          acc[m][r] = fmaf(static_cast<float>(s), dw[r] * dx, acc[m][r]);
        }
      }
    }
  }
}

// ggml q8_0 / q4_0 / q4_1: 4 lanes per block, each lane 8 values (blocks are 34/18/20 bytes,
// so rows are only 2-byte (q8_0, q4_0) or 4-byte (q4_1) aligned).
template <int KIND, int MB>
__device__ __forceinline__ void rows_ggml(const GemvArgs& a, const char* const (&wr)[kRows], float (&acc)[MB][kRows],
                                          int lane) {
  constexpr int BB = KIND == kQ8_0 ? 34 : KIND == kQ4_0 ? 18 : 20;
  constexpr int kUnroll = gemv_unroll(KIND, MB);
  const int64_t nb = a.K / 32, nt = nb * 4;
  for (int64_t t = lane; t < nt; t += 32 * kUnroll) {
    uint32_t q0[kUnroll][kRows], q1[kUnroll][kRows];
    float dw[kUnroll][kRows], mw[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t tt = t + u * 32 < nt ? t + u * 32 : nt - 1;
      const int64_t b = tt >> 2;
      const int s = static_cast<int>(tt & 3);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const char* blk = wr[r] + b * BB;
        dw[u][r] = half_at(blk);
        mw[u][r] = KIND == kQ4_1 ? half_at(blk + 2) : 0.f;
        if (KIND == kQ8_0) {
          q0[u][r] = ld_u16x2(blk + 2 + 8 * s);
          q1[u][r] = ld_u16x2(blk + 6 + 8 * s);
        } else if (KIND == kQ4_0) {
          q0[u][r] = ld_u16x2(blk + 2 + 4 * s);
          q1[u][r] = 0;
        } else {
          q0[u][r] = __ldg(reinterpret_cast<const unsigned int*>(blk + 4 + 4 * s));
          q1[u][r] = 0;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t tt = t + u * 32;
      if (tt >= nt) break;
      const int64_t b = tt >> 2;
      const int s = static_cast<int>(tt & 3);
#pragma unroll
      for (int m = 0; m < MB; ++m) {
        if (m >= a.M) break;
        const int8_t* xb = a.xq + m * a.kp + b * 32;
        const float dx = a.xd[m * nb + b];
        int xa, xc;  // q8_0: values 8s..8s+7; 4-bit kinds: 4s..4s+3 and 16+4s..16+4s+3
        if (KIND == kQ8_0) {
          const int2 v = *reinterpret_cast<const int2*>(xb + 8 * s);
          xa = v.x;
          xc = v.y;
        } else {
          xa = *reinterpret_cast<const int*>(xb + 4 * s);
          xc = *reinterpret_cast<const int*>(xb + 16 + 4 * s);
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          int sum;
          if (KIND == kQ8_0) {
            sum = __dp4a(static_cast<int>(q0[u][r]), xa, __dp4a(static_cast<int>(q1[u][r]), xc, 0));
          } else {
            int lo = static_cast<int>(q0[u][r] & 0x0f0f0f0fu), hi = static_cast<int>((q0[u][r] >> 4) & 0x0f0f0f0fu);
            if (KIND == kQ4_0) {
              lo = static_cast<int>(__vsub4(lo, 0x08080808));
              hi = static_cast<int>(__vsub4(hi, 0x08080808));
            }
            sum = __dp4a(lo, xa, __dp4a(hi, xc, 0));
          }
          float v = fmaf(static_cast<float>(sum), dw[u][r] * dx, acc[m][r]);
          if (KIND == kQ4_1) {
            const int sx = __dp4a(0x01010101, xa, __dp4a(0x01010101, xc, 0));
            v = fmaf(mw[u][r] * dx, static_cast<float>(sx), v);
          }
          acc[m][r] = v;
        }
      }
    }
  }
}

template <int KIND, int MB>
__global__ void __launch_bounds__(kWarps * 32) gemv_kernel(const GemvArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t n0 = (static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * kRows;
  if (n0 >= a.N) return;
  const char* wr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) wr[r] = a.w + (n0 + r < a.N ? n0 + r : a.N - 1) * a.rb;
  float acc[MB][kRows];
#pragma unroll
  for (int m = 0; m < MB; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.f;
  if constexpr (KIND == kInt8) {
    int acci[MB][kRows];
#pragma unroll
    for (int m = 0; m < MB; ++m)
#pragma unroll
      for (int r = 0; r < kRows; ++r) acci[m][r] = 0;
    rows_int8<MB>(a, wr, acci, lane);
#pragma unroll
    for (int m = 0; m < MB; ++m)
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        int v = acci[m][r];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        acc[m][r] = static_cast<float>(v);  // the exact integer dot, scaled below
      }
  } else {
    if constexpr (KIND == kInt4) rows_int4<MB>(a, n0, wr, acc, lane);
    else if constexpr (is_block_kind(KIND)) rows_ggml<KIND, MB>(a, wr, acc, lane);
    else rows_float<KIND, MB>(a, wr, acc, lane);
#pragma unroll
    for (int m = 0; m < MB; ++m)
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc[m][r] += __shfl_xor_sync(0xffffffffu, acc[m][r], o);
  }
  if (lane != 0) return;
#pragma unroll
  for (int m = 0; m < MB; ++m) {
    if (m >= a.M) break;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t n = n0 + r;
      if (n >= a.N) break;
      float v = acc[m][r];
      if (KIND == kInt8) v *= a.xd[m] * a.wscale[n];
      if (KIND == kFp8) v *= a.wscale[n];
      if (a.bias) v += a.bias[n];
      const int64_t o = m * a.N + n;
      if (a.out_dtype == 0) static_cast<float*>(a.out)[o] = v;
      else if (a.out_dtype == 1) static_cast<__half*>(a.out)[o] = __float2half_rn(v);
      else static_cast<__nv_bfloat16*>(a.out)[o] = __float2bfloat16_rn(v);
    }
  }
}

template <int KIND>
void launch_kind(const GemvArgs& a, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>((a.N + kWarps * kRows - 1) / (kWarps * kRows));
  if (a.M == 1) gemv_kernel<KIND, 1><<<blocks, kWarps * 32, 0, s>>>(a);
  else gemv_kernel<KIND, kLinearGemvMaxRows><<<blocks, kWarps * 32, 0, s>>>(a);
}

constexpr int64_t align16(int64_t v) { return (v + 15) / 16 * 16; }
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

int64_t linear_gemv_workspace_bytes(int kind, int64_t M, int64_t K, int x_dtype) {
  if (kind < kF32 || kind > kQ4_1) throw std::invalid_argument("kind: expected a weight kind code 0..8");
  if (x_dtype < 0 || x_dtype > 2) throw std::invalid_argument("x: dtype code must be 0 (f32), 1 (f16) or 2 (bf16)");
  if (M < 0 || M > kLinearGemvMaxRows) throw std::invalid_argument("x: the CUDA GEMV takes 0..8 rows");
  if (K < 0 || K > (int64_t{1} << 31)) throw std::invalid_argument("x: K out of range");
  if (!quantized_acts(kind)) return x_dtype == 0 ? 0 : align16(M * K * 4);
  const int64_t kp = (K + 31) / 32 * 32;
  const int64_t scales = kind == kInt8 ? M : M * (K / 32);
  return align16(M * kp) + align16(scales * 4);
}

void linear_gemv_launch(int kind, uintptr_t x, int x_dtype, uintptr_t w, uintptr_t scale, int64_t group,
                        uintptr_t bias, uintptr_t out, uintptr_t workspace, int64_t workspace_bytes, int64_t M,
                        int64_t N, int64_t K, uintptr_t stream) {
  const int64_t need = linear_gemv_workspace_bytes(kind, M, K, x_dtype);
  if (N < 0) throw std::invalid_argument("w: negative N");
  if (N > (int64_t{1} << 31)) throw std::invalid_argument("w: N out of range for the CUDA GEMV");
  if (M == 0 || N == 0) return;
  if (K == 0) throw std::invalid_argument("x: K must be > 0 (the caller handles K == 0)");
  if (x == 0 || w == 0 || out == 0) throw std::invalid_argument("x/w/out: null device pointer");
  if ((kind == kInt8 || kind == kFp8 || kind == kInt4) && scale == 0)
    throw std::invalid_argument("scale: this weight kind needs its scales");
  if (need > 0 && (workspace == 0 || workspace_bytes < need))
    throw std::invalid_argument("workspace: expected " + std::to_string(need) + " bytes");
  if (workspace != 0 && !aligned16(reinterpret_cast<const void*>(workspace)))
    throw std::invalid_argument("workspace: expected a 16-byte aligned pointer");
  int gshift = 0;
  if (kind == kInt4) {
    if (group != 32 && group != 64 && group != 128) throw std::invalid_argument("group: expected 32, 64 or 128");
    if (K % group) throw std::invalid_argument("group: must divide K");
    gshift = group == 32 ? 0 : group == 64 ? 1 : 2;
    if (!aligned16(reinterpret_cast<const void*>(w))) throw std::invalid_argument("w: int4 weights must be 16-byte aligned");
  }
  if (is_block_kind(kind) && K % 32) throw std::invalid_argument("x: K must be a multiple of 32 for this weight kind");
  if ((kind == kQ8_0 || kind == kQ4_0) && (w & 1u)) throw std::invalid_argument("w: ggml blocks must be 2-byte aligned");
  if (kind == kQ4_1 && (w & 3u)) throw std::invalid_argument("w: q4_1 blocks must be 4-byte aligned");
  if ((kind == kF32 && (w & 3u)) || ((kind == kF16 || kind == kBF16) && (w & 1u)))
    throw std::invalid_argument("w: misaligned float weights");

  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  GemvArgs a{};
  a.w = reinterpret_cast<const char*>(w);
  a.wscale = reinterpret_cast<const float*>(scale);
  a.gscale = reinterpret_cast<const __half*>(scale);
  a.gshift = gshift;
  a.bias = reinterpret_cast<const float*>(bias);
  a.out = reinterpret_cast<void*>(out);
  a.out_dtype = x_dtype;
  a.M = static_cast<int>(M);
  a.N = N;
  a.K = K;
  a.rb = row_bytes(kind, K);
  const void* xp = reinterpret_cast<const void*>(x);
  char* ws = reinterpret_cast<char*>(workspace);
  if (quantized_acts(kind)) {
    a.kp = (K + 31) / 32 * 32;
    a.xq = reinterpret_cast<const int8_t*>(ws);
    a.xd = reinterpret_cast<const float*>(ws + align16(M * a.kp));
    int8_t* xq = reinterpret_cast<int8_t*>(ws);
    float* xd = reinterpret_cast<float*>(ws + align16(M * a.kp));
    if (kind == kInt8) {
      quant_rows_kernel<<<static_cast<unsigned>(M), kQuantThreads, 0, s>>>(xp, x_dtype, K, a.kp, xq, xd);
    } else {
      const int64_t total = M * (K / 32);
      quant_blocks_kernel<<<static_cast<unsigned>((total + 7) / 8), 256, 0, s>>>(xp, x_dtype, K, total, xq, xd);
    }
    check_launch("linear activation quantization");
    a.vec = kind == kInt8 ? (K % 16 == 0 && aligned16(a.w)) : true;
  } else {
    if (x_dtype == 0) {
      a.xf = static_cast<const float*>(xp);
    } else {
      float* xf = reinterpret_cast<float*>(ws);
      const int64_t n = M * K;
      const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096));
      to_f32_kernel<<<blocks, 256, 0, s>>>(xp, x_dtype, xf, n);
      check_launch("linear activation conversion");
      a.xf = xf;
    }
    const int v = kind == kF32 ? 4 : kind == kFp8 ? 16 : 8;
    a.vec = K % v == 0 && aligned16(a.w) && aligned16(a.xf);
  }
  switch (kind) {
    case kF32: launch_kind<kF32>(a, s); break;
    case kF16: launch_kind<kF16>(a, s); break;
    case kBF16: launch_kind<kBF16>(a, s); break;
    case kFp8: launch_kind<kFp8>(a, s); break;
    case kInt8: launch_kind<kInt8>(a, s); break;
    case kInt4: launch_kind<kInt4>(a, s); break;
    case kQ8_0: launch_kind<kQ8_0>(a, s); break;
    case kQ4_0: launch_kind<kQ4_0>(a, s); break;
    default: launch_kind<kQ4_1>(a, s); break;
  }
  check_launch("linear gemv");
}

}  // namespace cuda
}  // namespace infercore
