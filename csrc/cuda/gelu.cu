// CUDA gelu kernel: grid-stride over the flat array, float32 math (erfcf / expf), launched on the
// caller's stream. Same formulation as the CPU kernel: gelu(x) = max(x, -0) - |x| s(|x|) with
// s = 0.5 erfc(|x| / sqrt 2) (exact) or 1 / (1 + exp(w)), w = 2 sqrt(2/pi) (a + 0.044715 a^3)
// (tanh form): exact limits and no cancellation on the negative side.
//
// Napkin math: b bytes read + b written per element and ~20-40 flops (erfcf is a short rational
// approximation in CUDA's libdevice): memory bound on a GPU (H100 SXM ~3.35 TB/s, i.e. ~0.4 T
// float32 elements/s).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>

#include "launch.h"

namespace infercore {
namespace cuda {
namespace {

template <typename T> __device__ __forceinline__ float gelu_to_f(T v);
template <> __device__ __forceinline__ float gelu_to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float gelu_to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float gelu_to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T gelu_from_f(float v);
template <> __device__ __forceinline__ float gelu_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half gelu_from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 gelu_from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <bool kTanh>
__device__ __forceinline__ float gelu_f(float x) {
  if (isnan(x)) return x;
  const float pos = x > 0.f ? x : copysignf(0.f, x);  // x, or a zero with x's sign
  if (kTanh) {
    const float a = fminf(fabsf(x), 12.f);
    const float e = expf(-a * (1.595769122f + 7.135481627e-02f * a * a));
    return pos - a * e / (1.f + e);
  }
  const float a = fminf(fabsf(x), 15.f);
  return pos - 0.5f * a * erfcf(a * 0.7071067812f);
}

template <typename T, bool kTanh>
__global__ void gelu_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = gelu_from_f<T>(gelu_f<kTanh>(gelu_to_f(x[i])));
}

template <typename T>
void gelu_typed(const void* x, void* out, int64_t n, bool tanh, cudaStream_t stream) {
  constexpr int kThreads = 256;
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  // enough blocks to fill every SM a few times over; the grid-stride loop covers the rest
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sms > 0 ? sms : 132) * 32;
  const dim3 grid(static_cast<unsigned>(want < cap ? want : cap));
  const T* xp = static_cast<const T*>(x);
  T* op = static_cast<T*>(out);
  if (tanh) gelu_kernel<T, true><<<grid, kThreads, 0, stream>>>(xp, op, n);
  else gelu_kernel<T, false><<<grid, kThreads, 0, stream>>>(xp, op, n);
}

}  // namespace

void gelu_launch(uintptr_t x, uintptr_t out, int64_t n, int dtype, bool tanh, uintptr_t stream) {
  if (n < 0) throw std::invalid_argument("x: negative size");
  if (n == 0) return;
  if (x == 0 || out == 0) throw std::invalid_argument("x/out: null device pointer");
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const void* xp = reinterpret_cast<const void*>(x);
  void* op = reinterpret_cast<void*>(out);
  switch (dtype) {
    case 0: gelu_typed<float>(xp, op, n, tanh, s); break;
    case 1: gelu_typed<__half>(xp, op, n, tanh, s); break;
    case 2: gelu_typed<__nv_bfloat16>(xp, op, n, tanh, s); break;
    default: throw std::invalid_argument("x: dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  }
  check_launch("gelu");
}

}  // namespace cuda
}  // namespace infercore
