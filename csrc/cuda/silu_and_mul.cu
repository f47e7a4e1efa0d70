// CUDA silu_and_mul: out[r, j] = silu(x[r, j]) * x[r, I + j], float32 math, on the caller's stream.
// Compiled for sm_80/sm_89/sm_90 and checked for spills with -Xptxas -v; written and compiled
// without a GPU: its tests (tests/gpu/test_silu_and_mul_cuda.py) and benchmark
// (benchmarks/bench_activation.py --gpu-only) have not been run on a device yet.
//
// silu(g) = g / (1 + s) for g >= 0 and g s / (1 + s) below, s = exp(-|g|) in (0, 1]: no overflow,
// no cancellation; the negative numerator is clamped at g = -120 (s is exactly 0 there) so
// silu(-inf) = -0 rather than -inf * 0; NaN propagates through s. Same function as the CPU kernel
// (csrc/cpu/silu_and_mul_impl.h) with CUDA's expf (2 ulp) and IEEE division.
//
// Napkin math: per output 2b bytes read + b written (12 bytes float32, 6 for 16-bit types), ~20
// instructions (expf ~8, the division ~8): H100 SXM moves ~3.35 TB/s (~2.9-3.0 measured by a copy)
// = ~0.25 T float32 outputs/s, while its 132 SMs issue ~28 T lane-instructions/s: ~100 per
// output, so the kernel is memory bound by 5x and should run near the copy bandwidth. 16-byte
// loads and stores (4 float32 / 8 half per thread) when I and both pointers allow, else scalar.
// The Llama decode case (one row, I = 1536..14336, 18-170 KB) is launch bound (~2-4 us).
// Grid: x over column chunks of a row (blockDim * VEC outputs), y over rows (capped at 65535,
// strided beyond), so both one long row and many short rows fill the machine.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.h"
#include "silu_and_mul_launch.h"

namespace infercore {
namespace cuda {
namespace {

template <typename T> __device__ __forceinline__ float sm_to_f(T v);
template <> __device__ __forceinline__ float sm_to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float sm_to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float sm_to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T sm_from_f(float v);
template <> __device__ __forceinline__ float sm_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half sm_from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 sm_from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float silu_mul_f(float g, float u) {
  const float s = expf(-fabsf(g));                             // NaN for NaN g: carries it
  const float num = g >= 0.f ? g : fmaxf(g, -120.f) * s;       // g, or g * s (-0 for -inf)
  return num / (1.f + s) * u;
}

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T, int kVec>
__global__ void silu_and_mul_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t rows, int64_t inner) {
  const int64_t c = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * kVec;
  if (c >= inner) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const T* g = x + r * 2 * inner + c;
    const T* u = g + inner;
    T* o = out + r * inner + c;
    if constexpr (kVec == 1) {
      *o = sm_from_f<T>(silu_mul_f(sm_to_f(*g), sm_to_f(*u)));
    } else {
      const Pack<T, kVec> gp = *reinterpret_cast<const Pack<T, kVec>*>(g);
      const Pack<T, kVec> up = *reinterpret_cast<const Pack<T, kVec>*>(u);
      Pack<T, kVec> op;
#pragma unroll
      for (int k = 0; k < kVec; ++k) op.v[k] = sm_from_f<T>(silu_mul_f(sm_to_f(gp.v[k]), sm_to_f(up.v[k])));
      *reinterpret_cast<Pack<T, kVec>*>(o) = op;
    }
  }
}

template <typename T, int kVec>
void launch_typed(const T* x, T* out, int64_t rows, int64_t inner, cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t per_block = static_cast<int64_t>(kThreads) * kVec;
  const int64_t gx = (inner + per_block - 1) / per_block;
  if (gx > 0x7FFFFFFF) throw std::invalid_argument("x: the last dimension is too large for one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(rows < 65535 ? rows : 65535));
  silu_and_mul_kernel<T, kVec><<<grid, kThreads, 0, stream>>>(x, out, rows, inner);
}

template <typename T>
void dispatch_vec(uintptr_t x, uintptr_t out, int64_t rows, int64_t inner, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const T* xp = reinterpret_cast<const T*>(x);
  T* op = reinterpret_cast<T*>(out);
  if (inner % kVec == 0 && x % 16 == 0 && out % 16 == 0) launch_typed<T, kVec>(xp, op, rows, inner, stream);
  else launch_typed<T, 1>(xp, op, rows, inner, stream);
}

}  // namespace

void silu_and_mul_launch(uintptr_t x, uintptr_t out, int64_t rows, int64_t inner, int dtype, uintptr_t stream) {
  if (rows < 0 || inner < 0) throw std::invalid_argument("x: negative size");
  if (dtype < 0 || dtype > 2)
    throw std::invalid_argument("x: dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  if (rows == 0 || inner == 0) return;
  if (x == 0 || out == 0) throw std::invalid_argument("x/out: null device pointer");
  const uintptr_t esz = dtype == 0 ? 4 : 2;
  const uintptr_t xbytes = static_cast<uintptr_t>(rows) * 2 * static_cast<uintptr_t>(inner) * esz;
  const uintptr_t obytes = xbytes / 2;
  if (!(x + xbytes <= out || out + obytes <= x))
    throw std::invalid_argument("out: overlaps x; silu_and_mul cannot run in place, pass a separate array");
  if (x % esz != 0 || out % esz != 0) throw std::invalid_argument("x/out: pointers not aligned to the element size");
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  switch (dtype) {
    case 0: dispatch_vec<float>(x, out, rows, inner, s); break;
    case 1: dispatch_vec<__half>(x, out, rows, inner, s); break;
    default: dispatch_vec<__nv_bfloat16>(x, out, rows, inner, s); break;
  }
  check_launch("silu_and_mul");
}

}  // namespace cuda
}  // namespace infercore
