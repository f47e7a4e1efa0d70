// Paged KV cache kernels: reshape_and_cache (write new tokens' K/V into their slots, quantizing
// for fp8/int8 caches) and paged attention for decode (one query token per sequence, split-K)
// and prefill (causal, packed new tokens, tiled online softmax). Caches are
// [num_blocks, block_size, Hkv, D] (NHD); a stored value dequantizes to stored * scale (one
// float per layer for fp8, one float per token and head for int8, 1 for float caches).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/dtype.h"

namespace infercore {

enum class KvDType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kFp8E4m3 = 3, kInt8 = 4 };

static inline int kv_dtype_size(KvDType t) {
  return t == KvDType::kFloat32 ? 4 : (t == KvDType::kFloat16 || t == KvDType::kBFloat16) ? 2 : 1;
}

struct KvCacheView {
  void* k = nullptr;               // [num_blocks, block_size, num_kv_heads, head_dim]
  void* v = nullptr;
  float* k_scales = nullptr;       // int8 only: [num_blocks, block_size, num_kv_heads]
  float* v_scales = nullptr;
  float k_scale = 1.f, v_scale = 1.f;  // fp8 (and float) caches: one scale per layer
  KvDType dtype = KvDType::kFloat32;
  int64_t num_blocks = 0, block_size = 0, num_kv_heads = 0, head_dim = 0;
};

struct ReshapeCacheArgs {
  const void* k = nullptr;         // [T, Hkv, D] float32/float16/bfloat16
  const void* v = nullptr;
  DType src_dtype = DType::kFloat32;
  const int64_t* slot_mapping = nullptr;  // [T], -1 = skip
  int64_t num_tokens = 0;
  KvCacheView cache;
};

struct PagedAttnArgs {
  const void* q = nullptr;         // [T, Hq, D] (decode: T = S)
  DType q_dtype = DType::kFloat32;
  float* out = nullptr;            // [T, Hq, D] float32
  int64_t num_tokens = 0, num_seqs = 0, num_heads = 0;
  const int32_t* block_tables = nullptr;  // [S, max_blocks]
  int64_t max_blocks = 0;
  const int32_t* seq_lens = nullptr;      // [S]
  const int32_t* query_start_loc = nullptr;  // [S + 1] (prefill only)
  float scale = 1.f;               // softmax scale
  int64_t sliding_window = 0;      // 0 = off; else each query sees the last w positions (itself incl.)
  int64_t num_splits = 0;          // decode split-K: 0 = choose
  KvCacheView cache;
};

// Bidirectional (encoder) attention over packed variable-length sequences, for BERT-style
// models: every token of sequence s attends to all tokens of s, none of another sequence.
struct PackedAttnArgs {
  const float* qkv = nullptr;         // [T, 3, H, D] float32: the fused QKV projection's rows
  const int64_t* cu_seqlens = nullptr;  // [S + 1]: sequence s is tokens [cu[s], cu[s + 1])
  float* out = nullptr;               // [T, H, D] float32
  int64_t num_tokens = 0, num_seqs = 0, num_heads = 0, head_dim = 0;
  float scale = 1.f;                  // softmax scale (1/sqrt(D) for BERT)
};

// Validate everything (before any memory is touched), then run over the thread pool.
// Call without the GIL. Errors throw std::invalid_argument / TypeErrorArg naming the argument.
void reshape_and_cache(const ReshapeCacheArgs& args);
void paged_attention_decode(const PagedAttnArgs& args);
void paged_attention_prefill(const PagedAttnArgs& args);
void packed_attention(const PackedAttnArgs& args);

// One ISA's kernel entry points (attention.cpp, attention_avx2.cpp, attention_avx512.cpp).
// attend_rows: R query rows (all mapping to kv head `kv_head` of one sequence) against the key
// positions [key_begin, key_end), each row r further limited to [lo[r], hi[r]); updates each
// row's online-softmax state (m, l, acc[D]). q rows are float32, pre-scaled.
struct AttnRows {
  const float* q = nullptr;        // [R, D]
  float* acc = nullptr;            // [R, D]
  float* m = nullptr;              // [R] running max (start at -inf)
  float* l = nullptr;              // [R] running sum (start at 0)
  const int32_t* lo = nullptr;     // [R] first key position each row may see
  const int32_t* hi = nullptr;     // [R] one past the last
  int64_t rows = 0;
};
// Keys per tile of the inner kernel (attention_impl.h kTile).
constexpr int kAttnTile = 32;
// Query rows prepared for the low-precision kernels: int16 values for int8 caches on AVX-512
// VNNI (attn_simd_avx512vnni.h), float16 bits for fp8 caches on AVX512-FP16
// (attn_simd_avx512fp16.h); a score is (row . key) * qs.
struct LowpRows {
  const int16_t* q = nullptr;      // [R, Dp], zero-padded to Dp = D rounded up to 64
  const float* qs = nullptr;       // [R] scale (NaN for a row with NaN/inf)
  int64_t Dp = 0;
};
using AttendFn = void (*)(const KvCacheView&, const int32_t* block_table, int64_t kv_head, int64_t key_begin,
                          int64_t key_end, const AttnRows&);
void attend_rows_scalar(const KvCacheView&, const int32_t*, int64_t, int64_t, int64_t, const AttnRows&);
void attend_rows_avx2(const KvCacheView&, const int32_t*, int64_t, int64_t, int64_t, const AttnRows&);
void attend_rows_avx512(const KvCacheView&, const int32_t*, int64_t, int64_t, int64_t, const AttnRows&);
void attend_rows_avx512vnni(const KvCacheView&, const int32_t*, int64_t, int64_t, int64_t, const AttnRows&);  // int8
void attend_rows_avx512fp16(const KvCacheView&, const int32_t*, int64_t, int64_t, int64_t, const AttnRows&);  // fp8

// One ISA's quantize-on-write of one cache row (kv_store_impl.h): x[D] * inv into dst in the
// cache's format; returns the row's int8 scale (1 for the other formats). Same bytes at every ISA.
using StoreRowFn = float (*)(const float* x, int64_t D, KvDType dt, float inv, void* dst);
float store_kv_row_scalar(const float*, int64_t, KvDType, float, void*);
float store_kv_row_avx2(const float*, int64_t, KvDType, float, void*);
float store_kv_row_avx512(const float*, int64_t, KvDType, float, void*);

// One ISA's encoder attention for heads [h0, h1) of one sequence of packed QKV rows
// (encoder_attention_impl.h): tokens [first, first + L) of H heads, into out [T, H, D]; scratch is
// the calling thread's buffer, grown as needed.
using EncoderAttendFn = void (*)(const float* qkv, int64_t H, int64_t D, int64_t first, int64_t L, int64_t h0,
                                 int64_t h1, float scale, float* out, std::vector<float>& scratch);
void encoder_attend_scalar(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float*,
                           std::vector<float>&);
void encoder_attend_avx2(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float*,
                         std::vector<float>&);
void encoder_attend_avx512(const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float*,
                           std::vector<float>&);

}  // namespace infercore
