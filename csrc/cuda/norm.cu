// CUDA kernels for l2_normalize and rms_norm: one thread block per row, float32 accumulation,
// launched on the caller's stream.
//
// Napkin math per row of n elements of b bytes: n*b read (the second pass reads the row from
// L2/L1), n*b written, ~4n flops: bound by HBM bandwidth (H100 SXM ~3.35 TB/s).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.h"

namespace infercore {
namespace cuda {
namespace {

template <typename T> __device__ __forceinline__ float to_f(T v);
template <> __device__ __forceinline__ float to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float block_sum(float v, float* smem) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = threadIdx.x < warps ? smem[threadIdx.x] : 0.f;
  if (warp == 0) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) smem[0] = v;
  }
  __syncthreads();
  return smem[0];
}

template <typename T, bool kRms>
__global__ void norm_kernel(const T* __restrict__ x, const float* __restrict__ w, T* __restrict__ out,
                            int64_t cols, float eps) {
  __shared__ float smem[32];
  const T* xr = x + static_cast<int64_t>(blockIdx.x) * cols;
  T* yr = out + static_cast<int64_t>(blockIdx.x) * cols;
  float ss = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float v = to_f(xr[j]);
    ss = fmaf(v, v, ss);
  }
  ss = block_sum(ss, smem);
  float scale;
  if (kRms) {
    scale = rsqrtf(ss / static_cast<float>(cols) + eps);
  } else {
    const float norm = sqrtf(ss);
    scale = 1.f / (norm < eps ? eps : norm);
  }
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    float v = to_f(xr[j]) * scale;
    if (kRms) v *= w[j];
    yr[j] = from_f<T>(v);
  }
}

template <typename T>
void launch_typed(bool rms, const void* x, const float* w, void* out, int64_t rows, int64_t cols, float eps,
                  cudaStream_t stream) {
  const int threads = cols >= 1024 ? 256 : cols >= 256 ? 128 : 32;
  const dim3 grid(static_cast<unsigned>(rows));
  if (rms) {
    norm_kernel<T, true><<<grid, threads, 0, stream>>>(static_cast<const T*>(x), w, static_cast<T*>(out), cols, eps);
  } else {
    norm_kernel<T, false><<<grid, threads, 0, stream>>>(static_cast<const T*>(x), w, static_cast<T*>(out), cols, eps);
  }
}

}  // namespace

void norm_launch(bool rms, uintptr_t x, uintptr_t weight, uintptr_t out, int64_t rows, int64_t cols,
                 int dtype, float eps, uintptr_t stream) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("x: negative dimension");
  if (rows == 0 || cols == 0) return;
  if (rows > 2147483647LL) throw std::invalid_argument("x: at most 2^31-1 rows on CUDA");
  if (x == 0 || out == 0 || (rms && weight == 0)) throw std::invalid_argument("x/out/weight: null device pointer");
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  const float* w = reinterpret_cast<const float*>(weight);
  const void* xp = reinterpret_cast<const void*>(x);
  void* op = reinterpret_cast<void*>(out);
  switch (dtype) {
    case 0: launch_typed<float>(rms, xp, w, op, rows, cols, eps, s); break;
    case 1: launch_typed<__half>(rms, xp, w, op, rows, cols, eps, s); break;
    case 2: launch_typed<__nv_bfloat16>(rms, xp, w, op, rows, cols, eps, s); break;
    default: throw std::invalid_argument("x: dtype code must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  }
  check_launch("norm");
}

}  // namespace cuda
}  // namespace infercore
