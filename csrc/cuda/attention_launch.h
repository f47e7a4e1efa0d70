// Launchers of the paged KV cache CUDA kernels (host side, no pybind11): reshape_and_cache,
// paged attention decode (split-K) and prefill. Every pointer is a device address passed as an
// integer; every size is checked here and a bad one throws std::invalid_argument before launch.
//
// Index arrays (block_tables, seq_lens, query_start_loc, slot_mapping) live on the device, so
// their *values* cannot be checked here without a device-to-host copy. ops/attention.py checks
// them on the host before calling (one small copy), and the kernels never trust them either:
// an out-of-range block id, slot or length is clamped/skipped (never dereferenced) and sets a bit
// in *err (when err != 0): 1 block id, 2 seq_len, 4 slot, 8 query_start_loc.
#pragma once
#include <cstdint>

namespace infercore {
namespace cuda {

// Cache dtype codes: 0 float32, 1 float16, 2 bfloat16, 3 float8_e4m3fn, 4 int8.
// Input (k, v, q) dtype codes: 0 float32, 1 float16, 2 bfloat16.
struct KvCacheDev {
  uintptr_t k = 0, v = 0;                // [num_blocks, block_size, num_kv_heads, head_dim]
  uintptr_t k_scales = 0, v_scales = 0;  // int8 only: float32 [num_blocks, block_size, num_kv_heads]
  float k_scale = 1.f, v_scale = 1.f;    // other dtypes: stored value * scale = value
  int dtype = 0;
  int64_t num_blocks = 0, block_size = 0, num_kv_heads = 0, head_dim = 0;
};

struct ReshapeCacheDev {
  uintptr_t k = 0, v = 0;  // [num_tokens, num_kv_heads, head_dim], contiguous
  int src_dtype = 0;
  uintptr_t slot_mapping = 0;  // int64 [num_tokens], -1 skips the token
  int64_t num_tokens = 0;
  KvCacheDev cache;
  uintptr_t err = 0;  // optional int32 flag word
  uintptr_t stream = 0;
};

struct PagedAttnDev {
  uintptr_t q = 0;  // [num_tokens, num_heads, head_dim] contiguous (decode: num_tokens = num_seqs)
  int q_dtype = 0;
  uintptr_t out = 0;  // float32 [num_tokens, num_heads, head_dim]
  int64_t num_tokens = 0, num_seqs = 0, num_heads = 0;
  uintptr_t block_tables = 0;  // int32 [num_seqs, max_blocks]
  int64_t max_blocks = 0;
  uintptr_t seq_lens = 0;         // int32 [num_seqs]
  uintptr_t query_start_loc = 0;  // int32 [num_seqs + 1] (prefill)
  int64_t max_query_len = 0;      // prefill: max over sequences of new tokens (sizes the grid)
  float scale = 1.f;
  int64_t sliding_window = 0;  // 0 = off
  int64_t num_splits = 1;      // decode: >= 1 (see paged_attention_decode_splits)
  uintptr_t workspace = 0;     // decode with num_splits > 1: float32 [decode_workspace_floats(...)]
  int64_t workspace_floats = 0;
  KvCacheDev cache;
  uintptr_t err = 0;
  uintptr_t stream = 0;
};

void reshape_and_cache_launch(const ReshapeCacheDev& a);
void paged_attention_decode_launch(const PagedAttnDev& a);
void paged_attention_prefill_launch(const PagedAttnDev& a);

// Split-K count for decode: enough (sequence, kv head, split) blocks to fill the device's SMs
// twice, each split >= 64 keys, at most 256. max_keys: the longest attended range.
int64_t paged_attention_decode_splits(int64_t num_seqs, int64_t num_heads, int64_t num_kv_heads,
                                      int64_t max_keys, int device);
// float32 elements of the decode workspace for num_splits > 1 (0 when num_splits == 1).
int64_t paged_attention_decode_workspace(int64_t num_seqs, int64_t num_heads, int64_t head_dim, int64_t num_splits);

}  // namespace cuda
}  // namespace infercore
