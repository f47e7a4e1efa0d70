// CUDA RoPE, in place on packed rows x [T, W] float32 (the fused q|k|v projection output).
// Compiled for sm_80/sm_89/sm_90 and checked for spills with -Xptxas -v; written and compiled
// without a GPU: its tests (tests/gpu/test_rotary_embedding_cuda.py) and benchmark
// (benchmarks/bench_activation.py --gpu-only) have not been run on a device yet.
//
// One thread per rotated pair: (a, b) -> (a cos - b sin, b cos + a sin) with the table row of the
// row's position; pairs (2i, 2i + 1) (interleaved, GGUF llama) or (i, i + D/2) (neox). Grid: x
// over the row's pairs (heads * D / 2 of them, blockDim per block), y over rows (capped at 65535,
// strided beyond). Consecutive threads touch consecutive pairs: in the neox form a warp reads two
// contiguous 128-byte runs, in the interleaved form one contiguous 256-byte run with two 4-byte
// loads per thread (both fully coalesced).
//
// Napkin math per row: 8 bytes read + written per rotated element, 8 bytes of cos/sin per pair
// (one table row, shared by every head of the row: L1 hits after the first head), 3 flops per
// element. SmolLM2 prefill, 512 rows x 12 heads x 64: 3.1 MB moved, ~1 us at ~3 TB/s; decode
// (one row, 3 KB) is launch bound (~2-3 us). Memory bound either way, and small next to the
// projection GEMM that produced the rows (its output is often still in L2).
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.h"
#include "rope_launch.h"

namespace infercore {
namespace cuda {
namespace {

template <bool kInterleaved>
__global__ void rope_kernel(float* __restrict__ x, int64_t rows, int64_t width, int pairs, int half,
                            const int64_t* __restrict__ positions, const float* __restrict__ cos,
                            const float* __restrict__ sin, int64_t table_rows) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= pairs) return;
  const int h = j / half, i = j - h * half;
  const int ia = kInterleaved ? h * 2 * half + 2 * i : h * 2 * half + i;
  const int ib = kInterleaved ? ia + 1 : ia + half;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t p = positions[r];
    if (p < 0 || p >= table_rows) continue;  // the Python op rejects these before launching
    const float c = cos[p * half + i], s = sin[p * half + i];
    float* v = x + r * width;
    const float a = v[ia], b = v[ib];
    v[ia] = a * c - b * s;
    v[ib] = b * c + a * s;
  }
}

}  // namespace

void rope_launch(uintptr_t x, int64_t rows, int64_t width, int64_t heads, int64_t head_dim, uintptr_t positions,
                 uintptr_t cos, uintptr_t sin, int64_t table_rows, bool interleaved, uintptr_t stream) {
  if (rows < 0 || width < 0 || heads < 0 || table_rows < 0) throw std::invalid_argument("x: negative size");
  if (head_dim <= 0 || head_dim % 2)
    throw std::invalid_argument("x: expected an even head_dim > 0, got " + std::to_string(head_dim));
  if (heads * head_dim > width)
    throw std::invalid_argument("heads: " + std::to_string(heads) + " heads of " + std::to_string(head_dim) +
                                " exceed the row width " + std::to_string(width));
  const int64_t pairs = heads * head_dim / 2;
  if (pairs > 0x7FFFFFFF) throw std::invalid_argument("heads: too many rotated elements per row");
  if (rows == 0 || pairs == 0) return;
  if (x == 0 || positions == 0 || cos == 0 || sin == 0)
    throw std::invalid_argument("x/positions/cos/sin: null device pointer");
  if (x % 4 || cos % 4 || sin % 4 || positions % 8)
    throw std::invalid_argument("x/positions/cos/sin: pointers not aligned to their element size");
  if (table_rows == 0) throw std::invalid_argument("cos/sin: empty table");
  constexpr int kThreads = 128;
  const dim3 grid(static_cast<unsigned>((pairs + kThreads - 1) / kThreads),
                  static_cast<unsigned>(rows < 65535 ? rows : 65535));
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  float* xp = reinterpret_cast<float*>(x);
  const auto* pp = reinterpret_cast<const int64_t*>(positions);
  const auto* cp = reinterpret_cast<const float*>(cos);
  const auto* sp = reinterpret_cast<const float*>(sin);
  const int half = static_cast<int>(head_dim / 2), np = static_cast<int>(pairs);
  if (interleaved) rope_kernel<true><<<grid, kThreads, 0, s>>>(xp, rows, width, np, half, pp, cp, sp, table_rows);
  else rope_kernel<false><<<grid, kThreads, 0, s>>>(xp, rows, width, np, half, pp, cp, sp, table_rows);
  check_launch("rope");
}

}  // namespace cuda
}  // namespace infercore
