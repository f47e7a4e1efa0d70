// Tensor-core paged attention decode (attention_decode_mma.cu): the launcher attention_decode.cu
// calls for float16, fp8 and int8 caches with head_dim 64 or 128. Same arguments, workspace and
// split-K merge as the CUDA-core kernel there (DecodeParams); host side only.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace infercore {
namespace cuda {

struct MmaDecodeParams {
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
  int bs, bs_shift;
  int Hkv, Hq, G;
  int gc, nchunks, splits;  // query heads per block (<= 8), blocks per kv head, key splits
  int q_dtype;
  int window;
  float qmul;  // scale * log2(e) * k_scale (* 256 for fp8; int8: the k scales come per token)
  float vmul;  // v_scale (* 256 for fp8; 1 for int8)
};

constexpr int kMmaMaxGroup = 8;  // query heads per block: rows 0-7 of the m16 tile

// Whether the tensor-core kernel takes this cache (dtype code as KvCacheDev, head_dim) on `device`.
bool decode_mma_eligible(int cache_dtype, int64_t head_dim, int device);
void decode_mma_launch(const MmaDecodeParams& p, int cache_dtype, int head_dim, dim3 grid, cudaStream_t s);

}  // namespace cuda
}  // namespace infercore
