// Paged attention decode: the kernel parameters both decode kernels take (the CUDA-core one in
// attention_decode.cu, the tensor-core one in attention_decode_mma.cu) and the tensor-core
// kernel's launcher, which attention_decode.cu's launcher calls for float16, fp8 and int8 caches
// with head_dim 64 or 128. Same workspace and split-K merge for both; host side only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace infercore {
namespace cuda {

struct DecodeParams {
  const void* q;
  float* out;       // [S, Hq, D] (splits == 1)
  float* part_o;    // [S, Hq, splits, D] normalised partial outputs (splits > 1)
  float* part_lse;  // [S, Hq, splits] log2-sum-exp of each split (-inf when empty)
  const char* kc;
  const char* vc;
  const float* ks;  // int8: [num_blocks, block_size, Hkv]
  const float* vs;
  const int32_t* bt;
  const int32_t* lens;
  int* err;
  int64_t max_blocks, num_blocks;
  int bs, bs_shift;  // bs_shift >= 0 when block_size is a power of two
  int Hkv, Hq, D, G;
  int gc, nchunks, splits;  // query heads per block, blocks per kv head, key splits
  int tpk_log2;             // CUDA-core kernel: log2 of the threads per key
  int q_dtype;
  int window;
  float qmul;  // scale * log2(e) * k_scale (* 256 for fp8; int8: the k scales come per token)
  float vmul;  // v_scale (* 256 for fp8; 1 for int8)
};

constexpr int kMmaMaxGroup = 8;  // tensor-core kernel: query heads per block (rows 0-7 of the m16 tile)

// Keys per tile of the tensor-core kernel: 16, or 32 when requested for an 8-bit cache (twice
// the bytes per step of the per-tile dependency chain; INFERCORE_CUDA_ATTN_MMA_TILE=32, to A/B).
int decode_mma_tile_keys(int cache_dtype, int requested);
// Whether the tensor-core kernel takes this cache (dtype code as KvCacheDev, head_dim) on `device`.
bool decode_mma_eligible(int cache_dtype, int64_t head_dim, int tile_keys, int device);
void decode_mma_launch(const DecodeParams& p, int cache_dtype, int head_dim, int tile_keys, dim3 grid,
                       cudaStream_t s);

}  // namespace cuda
}  // namespace infercore
