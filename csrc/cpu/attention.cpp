// Paged attention and reshape_and_cache: validation, work splitting over the thread pool, and
// the scalar instantiation of the inner kernel (attention_impl.h).
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "attn_simd_scalar.h"
#include "kv_quant.h"

namespace infercore {
namespace {
#include "attention_impl.h"
#include "kv_store_impl.h"
#include "encoder_attention_impl.h"

StoreRowFn pick_store(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return store_kv_row_avx512;
    case IsaLevel::kAvx2: return store_kv_row_avx2;
    default: return store_kv_row_scalar;
  }
}

// The level's kernel for a cache type: at AVX-512, int8 caches take integer dot products where
// the CPU has VNNI, fp8 caches float16 arithmetic where it has AVX512-FP16.
AttendFn pick(IsaLevel level, KvDType dt) {
  const CpuFeatures& f = cpu_features();
  switch (level) {
    case IsaLevel::kAvx512:
      if (dt == KvDType::kInt8 && f.avx512_vnni) return attend_rows_avx512vnni;
      if (dt == KvDType::kFp8E4m3 && f.avx512_fp16) return attend_rows_avx512fp16;
      return attend_rows_avx512;
    case IsaLevel::kAvx2: return attend_rows_avx2;
    default: return attend_rows_scalar;
  }
}

std::string idx(const char* name, int64_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

void check_cache(const KvCacheView& c) {
  IC_CHECK_VALUE(c.num_blocks > 0 && c.block_size > 0 && c.num_kv_heads > 0 && c.head_dim > 0,
                 "k_cache: expected shape [num_blocks, block_size, num_kv_heads, head_dim] with every dim > 0");
  IC_CHECK_VALUE(c.k != nullptr && c.v != nullptr, "k_cache/v_cache: null data pointer");
  const int code = static_cast<int>(c.dtype);
  IC_CHECK_TYPE(code >= 0 && code <= 4, "k_cache: unknown cache dtype code " + std::to_string(code));
  if (c.dtype == KvDType::kInt8) {
    IC_CHECK_VALUE(c.k_scales != nullptr, "k_scale: int8 caches need a float32 [num_blocks, block_size, Hkv] array");
    IC_CHECK_VALUE(c.v_scales != nullptr, "v_scale: int8 caches need a float32 [num_blocks, block_size, Hkv] array");
  } else {
    IC_CHECK_VALUE(std::isfinite(c.k_scale) && c.k_scale > 0.f, "k_scale: expected a finite number > 0");
    IC_CHECK_VALUE(std::isfinite(c.v_scale) && c.v_scale > 0.f, "v_scale: expected a finite number > 0");
  }
}

// Everything paged_attention_* reads, checked before any of it is dereferenced.
void check_attention(const PagedAttnArgs& a, bool prefill) {
  check_cache(a.cache);
  const KvCacheView& c = a.cache;
  IC_CHECK_VALUE(a.num_seqs >= 0 && a.num_tokens >= 0, "q: negative dimension");
  IC_CHECK_VALUE(a.num_heads > 0 && a.num_heads % c.num_kv_heads == 0,
                 "q: num_heads (" + std::to_string(a.num_heads) + ") must be a positive multiple of the cache's " +
                     "num_kv_heads (" + std::to_string(c.num_kv_heads) + ")");
  IC_CHECK_VALUE(std::isfinite(a.scale), "scale: expected a finite number");
  IC_CHECK_VALUE(a.sliding_window >= 0, "sliding_window: expected None or a positive integer");
  IC_CHECK_VALUE(a.max_blocks > 0 || a.num_seqs == 0, "block_tables: expected at least one column");
  if (!prefill) IC_CHECK_VALUE(a.num_tokens == a.num_seqs, "q: decode takes one token per sequence");
  const int64_t capacity = a.max_blocks * c.block_size;
  for (int64_t s = 0; s < a.num_seqs; ++s) {
    const int64_t len = a.seq_lens[s];
    IC_CHECK_VALUE(len >= (prefill ? 0 : 1), idx("seq_lens", s) + " = " + std::to_string(len) +
                                                 (prefill ? ": expected >= 0" : ": expected >= 1"));
    IC_CHECK_VALUE(len <= capacity, idx("seq_lens", s) + " = " + std::to_string(len) +
                                        " exceeds the block table capacity " + std::to_string(capacity) +
                                        " (max_blocks x block_size)");
    const int32_t* row = a.block_tables + s * a.max_blocks;
    for (int64_t j = 0; j < (len + c.block_size - 1) / c.block_size; ++j)
      IC_CHECK_VALUE(row[j] >= 0 && row[j] < c.num_blocks,
                     "block_tables[" + std::to_string(s) + ", " + std::to_string(j) + "] = " + std::to_string(row[j]) +
                         " is out of range [0, " + std::to_string(c.num_blocks) + ")");
  }
  if (prefill) {
    const int32_t* qsl = a.query_start_loc;
    IC_CHECK_VALUE(qsl[0] == 0, "query_start_loc[0]: expected 0");
    for (int64_t s = 0; s < a.num_seqs; ++s) {
      const int64_t n = static_cast<int64_t>(qsl[s + 1]) - qsl[s];
      IC_CHECK_VALUE(n >= 0, "query_start_loc: expected non-decreasing values");
      IC_CHECK_VALUE(n <= a.seq_lens[s], idx("seq_lens", s) + " = " + std::to_string(a.seq_lens[s]) +
                                             " is shorter than its " + std::to_string(n) + " new tokens");
    }
    IC_CHECK_VALUE(qsl[a.num_seqs] == a.num_tokens, "query_start_loc[-1]: expected the number of tokens in q (" +
                                                        std::to_string(a.num_tokens) + ")");
  }
}

// fp8 loads return value / 256 (attn_simd_*.h): fold the 256 into the scales.
float fold(const KvCacheView& c, float scale) {
  if (c.dtype == KvDType::kInt8) return 1.f;  // per-token scales are applied inside the kernel
  return scale * (c.dtype == KvDType::kFp8E4m3 ? 256.f : 1.f);
}
float k_fold(const KvCacheView& c) { return fold(c, c.k_scale); }
float v_fold(const KvCacheView& c) { return fold(c, c.v_scale); }

float load_q(const void* q, DType t, int64_t i) {
  switch (t) {
    case DType::kFloat32: return static_cast<const float*>(q)[i];
    case DType::kFloat16: return half_to_float(static_cast<const uint16_t*>(q)[i]);
    default: return bf16_to_float(static_cast<const uint16_t*>(q)[i]);
  }
}

// Per-task scratch: rows x D of q and acc, plus per-row softmax state and key limits, and the
// running merge of the rows' key chunks (O, M, L: see merge_chunk).
struct RowBuffers {
  std::vector<float> q, acc, m, l, O, M, L;
  std::vector<int32_t> lo, hi;
  // Sizes q and the key limits (filled by the caller) and empties the running merge.
  void view(int64_t rows, int64_t D) {
    q.resize(rows * D);
    lo.resize(rows);
    hi.resize(rows);
    O.assign(rows * D, 0.f);
    M.assign(rows, -std::numeric_limits<float>::infinity());
    L.assign(rows, 0.f);
  }
  // A new online softmax (one chunk of keys), q and the key limits kept.
  AttnRows fresh(int64_t rows, int64_t D) {
    acc.assign(rows * D, 0.f);
    m.assign(rows, -std::numeric_limits<float>::infinity());
    l.assign(rows, 0.f);
    return AttnRows{q.data(), acc.data(), m.data(), l.data(), lo.data(), hi.data(), rows};
  }
};

// Split-K (flash-decoding) in a form whose bits depend on nothing but the row: the keys of a
// row are cut at absolute multiples of kChunkKeys, each chunk runs its own online softmax, and
// the chunks' (m, l, acc) are merged in key order by merge_chunk. The decode kernel (chunks of a
// sequence over the pool when there are few sequences, or one after the other in one task) and
// the prefill kernel (a chunk at a time in its query-tile task) do exactly this, so a row gets
// the same bits whatever the batch, the thread count, or which kernel the engine's step took, and
// the engine's seeded sampling reproduces whatever else shares the batch (stop 31; the split
// count used to follow the number of sequences, and int8 KV changed 13 of 14 texts with
// 500-700-token prompts between a crowded batch and a request alone). Not with a sliding window:
// there a prefill query tile lays its key tiles from its rows' smallest window start, decode from
// the row's own. A row of <= kChunkKeys
// keys is one chunk: merge_chunk copies it exactly. 512 keys, measured against the old
// batch-dependent splits (SmolLM2 geometry, 2 threads, median of 3 interleaved runs): 16 x 4096
// keys fp8 1.62 -> 1.60 ms, int8 1.55 -> 1.59, float16 2.36 -> 2.39 (256-key chunks: fp8 and
// int8 +7-8%); 1 x 4096 the same or faster. A chunk's kv heads are separate tasks when there are
// fewer chunks than two per thread (1 x 300-1024 keys, 2 x 700: the same or faster than before,
// e.g. 1 x 600 int8 0.048 -> 0.028 ms, 1 x 1024 float16 0.050 -> 0.039).
constexpr int64_t kChunkKeys = 512;
static_assert(kChunkKeys % kAttnTile == 0 && (kChunkKeys & (kChunkKeys - 1)) == 0,
              "chunks: a power of two of whole key tiles");

// Folds one chunk's partial softmax state (m, l, acc of `rows` rows) into the running (M, L, O)
// of the rows, in key order: M' = max(M, m), L' = L e^(M - M') + l e^(m - M'), O likewise. A row
// without keys in the chunk (l == 0) is skipped. Not inlined: both kernels run these exact
// instructions.
__attribute__((noinline)) void merge_chunk(int64_t rows, int64_t D, const float* m, const float* l, const float* acc,
                                           float* M, float* L, float* O) {
  for (int64_t r = 0; r < rows; ++r) {
    if (l[r] == 0.f) continue;
    const float mn = std::max(M[r], m[r]);
    const float a = std::exp(M[r] - mn), b = std::exp(m[r] - mn);
    L[r] = L[r] * a + l[r] * b;
    float* o = O + r * D;
    const float* x = acc + r * D;
    for (int64_t d = 0; d < D; ++d) o[d] = o[d] * a + x[d] * b;
    M[r] = mn;
  }
}

// out row = O * (scale / L) (a row that saw no key: zeros).
void finish_row(const float* O, float L, float scale, int64_t D, float* out) {
  const float inv = L > 0.f ? scale / L : 0.f;
  for (int64_t d = 0; d < D; ++d) out[d] = O[d] * inv;
}

// Reads one word of every cache line of the K and V rows (all kv heads) of key positions
// [p0, p1) and of int8's scales, front to back. The heads of a token are adjacent, so this is
// one ascending run per block, which the hardware prefetcher follows; the head-by-head passes
// that come next then hit L2. Without it each head's pass misses on its own D-wide slice of
// every token (stride Hkv x D), and the 7B geometry read ~10 GB/s: S = 16 x 4096 keys, 2
// threads, float16 25 -> 17 ms, fp8 15.5 -> 12.7, int8 16 -> 12.1 (SmolLM2's 3 x 64 slices
// already streamed when the cache was still in L3). Touching the next chunk instead, or
// prefetching it, measured the same or worse, and touching only a few lines per page gained
// nothing. A served model's layers evict each other's KV between steps, and there the pass pays
// from ~2 MB per call (2 threads, each call one of 32 layers' caches in turn, as in a model):
// SmolLM2 16 x 4096 keys float16 4.70 -> 3.39 ms, fp8 3.50 -> 2.80; 16 x 512 float16 0.62 ->
// 0.50; 4 x 512 (1.6 MB) 0.132 -> 0.101; 7B 1 x 4096 float16 1.82 -> 1.21. The engine's decode
// at 16 x 2000 tokens: 82 -> 66 ms per step. Since the pass reads two blocks at a time (stop
// 27) it pays from ~512 KB (it was 2 MB, when smaller calls gained nothing): cold, SmolLM2
// fp8 / int8 4 x 512 keys (0.8 MB) 0.10 -> 0.073 ms, 1 x 1024 keys 25-40% more GB/s, fp8 1 x
// 4096 (1.6 MB) 0.20-0.23 -> 0.13-0.19 ms; the engine at 1 sequence x 2500 tokens (1.9 MB of
// float16 per layer): 12.8 -> 11.2 ms per step. Below ~512 KB it was a wash. A benchmark
// repeating one call on one L3-resident cache sees the pass cost 5-25%; `bench attention` times
// both ways (its "layers" rows).
void touch_keys(const KvCacheView& c, const int32_t* bt, int64_t p0, int64_t p1) {
  const int64_t bs = c.block_size, H = c.num_kv_heads, row = H * c.head_dim * kv_dtype_size(c.dtype);
  const bool scaled = c.dtype == KvDType::kInt8;
  uint32_t sum = 0;
  // Two blocks' K and V runs at a time, line by line interleaved: four streams in flight instead
  // of two measured 12-15% faster out of DRAM on SmolLM2's 3-6 KiB blocks (float16 and int8).
  constexpr int kWays = 2;
  struct Run {
    const char *k, *v;
    int64_t bytes, slot, n;
  };
  for (int64_t pos = p0; pos < p1;) {
    Run runs[kWays];
    int nr = 0;
    int64_t most = 0;
    for (; nr < kWays && pos < p1; ++nr) {
      const int64_t off = pos % bs, n = std::min(p1 - pos, bs - off);
      const int64_t slot = static_cast<int64_t>(bt[pos / bs]) * bs + off;
      runs[nr] = {static_cast<const char*>(c.k) + slot * row, static_cast<const char*>(c.v) + slot * row, n * row,
                  slot, n};
      most = std::max(most, n * row);
      pos += n;
    }
    for (int64_t b = 0; b < most; b += 64)
      for (int i = 0; i < nr; ++i)
        if (b < runs[i].bytes)
          sum += *reinterpret_cast<const volatile uint32_t*>(runs[i].k + b) +
                 *reinterpret_cast<const volatile uint32_t*>(runs[i].v + b);
    if (scaled)
      for (int i = 0; i < nr; ++i)
        for (int64_t b = 0; b < runs[i].n * H; b += 16)
          sum += *reinterpret_cast<const volatile uint32_t*>(c.k_scales + runs[i].slot * H + b) +
                 *reinterpret_cast<const volatile uint32_t*>(c.v_scales + runs[i].slot * H + b);
  }
  static thread_local uint32_t sink;
  sink += sum;
}

constexpr int64_t kTouchBytes = 512 << 10;  // K+V bytes of a decode call from which touch_keys runs
constexpr int64_t kDecodeBytes = 128 << 10;  // K+V bytes of one head-by-head pass over a chunk of keys (L2-resident)
}  // namespace

void attend_rows_scalar(const KvCacheView& c, const int32_t* bt, int64_t h, int64_t kb, int64_t ke,
                        const AttnRows& r) {
  attend_rows_dispatch<AttnScalar>(c, bt, h, kb, ke, r);
}

float store_kv_row_scalar(const float* x, int64_t D, KvDType dt, float inv, void* dst) {
  return store_kv_row(x, D, dt, inv, dst);
}

void encoder_attend_scalar(const float* qkv, int64_t H, int64_t D, int64_t first, int64_t L, int64_t h0,
                         int64_t h1, float scale, float* out, std::vector<float>& scratch) {
  encoder_attend<AttnScalar>(qkv, H, D, first, L, h0, h1, scale, out, scratch);
}

// ------------------------------------------------------------------------- reshape_and_cache
void reshape_and_cache(const ReshapeCacheArgs& a) {
  check_cache(a.cache);
  const KvCacheView& c = a.cache;
  IC_CHECK_VALUE(a.num_tokens >= 0, "k: negative dimension");
  const int64_t slots = c.num_blocks * c.block_size;
  for (int64_t t = 0; t < a.num_tokens; ++t) {
    const int64_t s = a.slot_mapping[t];
    IC_CHECK_VALUE(s >= -1 && s < slots, idx("slot_mapping", t) + " = " + std::to_string(s) +
                                             " is out of range [-1, " + std::to_string(slots) + ")");
  }
  const int64_t H = c.num_kv_heads, D = c.head_dim, esz = kv_dtype_size(c.dtype);
  const float kinv = 1.f / c.k_scale, vinv = 1.f / c.v_scale;
  const StoreRowFn store = pick_store(isa_level());
  auto write_row = [&](const void* src, int64_t t, int64_t h, void* dst_base, float* scales, float inv, int64_t slot) {
    const int64_t si = (t * H + h) * D;
    const float* x = a.src_dtype == DType::kFloat32 ? static_cast<const float*>(src) + si : nullptr;
    float row[1024];
    std::vector<float> big;
    if (x == nullptr) {  // float16/bfloat16 sources are widened first
      float* w = row;
      if (D > 1024) {
        big.resize(D);
        w = big.data();
      }
      for (int64_t d = 0; d < D; ++d) w[d] = load_q(src, a.src_dtype, si + d);
      x = w;
    }
    char* dst = static_cast<char*>(dst_base) + ((slot * H + h) * D) * esz;
    const float s = store(x, D, c.dtype, inv, dst);
    if (c.dtype == KvDType::kInt8) scales[slot * H + h] = s;
  };
  parallel_for(0, a.num_tokens, 64, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t slot = a.slot_mapping[t];
      if (slot < 0) continue;
      for (int64_t h = 0; h < H; ++h) {
        write_row(a.k, t, h, c.k, c.k_scales, kinv, slot);
        write_row(a.v, t, h, c.v, c.v_scales, vinv, slot);
      }
    }
  });
}

// ------------------------------------------------------------------------------------ decode
void paged_attention_decode(const PagedAttnArgs& a) {
  check_attention(a, false);
  if (a.num_seqs == 0) return;
  const KvCacheView& c = a.cache;
  const int64_t S = a.num_seqs, Hq = a.num_heads, Hkv = c.num_kv_heads, D = c.head_dim, G = Hq / Hkv;
  const AttendFn attend = pick(isa_level(), c.dtype);
  const float qmul = a.scale * k_fold(c), vmul = v_fold(c);
  auto key_begin = [&](int64_t len) { return a.sliding_window > 0 ? std::max<int64_t>(0, len - a.sliding_window) : 0; };

  // Key chunks per sequence (merge_chunk): absolute multiples of kChunkKeys, or num_splits equal
  // chunks when a caller forces that (tests; those bits then follow num_splits).
  std::vector<int64_t> first_chunk(S + 1, 0);
  int64_t total_keys = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t len = a.seq_lens[s], kb0 = key_begin(len);
    total_keys += len - kb0;
    const int64_t n = len <= kb0 ? 1
                      : a.num_splits > 0 ? std::min<int64_t>(a.num_splits, len - kb0)
                                         : (len - 1) / kChunkKeys - kb0 / kChunkKeys + 1;
    first_chunk[s + 1] = first_chunk[s] + n;
  }
  auto chunk_keys = [&](int64_t s, int64_t j, int64_t* c0, int64_t* c1) {
    const int64_t len = a.seq_lens[s], kb0 = key_begin(len);
    if (a.num_splits > 0) {
      const int64_t n = first_chunk[s + 1] - first_chunk[s], per = (len - kb0 + n - 1) / n;
      *c0 = std::min(len, kb0 + j * per);
      *c1 = std::min(len, *c0 + per);
    } else {
      *c0 = std::max(kb0, (kb0 / kChunkKeys + j) * kChunkKeys);
      *c1 = std::min(len, (kb0 / kChunkKeys + j + 1) * kChunkKeys);
    }
  };
  const int64_t chunks = first_chunk[S];
  const int64_t key_bytes = 2 * Hkv * D * kv_dtype_size(c.dtype);
  // pieces of a chunk that stay in L2 across the heads: the largest power of two that fits (it
  // divides kChunkKeys, so a chunk is whole pieces)
  int64_t dchunk = kTile;
  while (dchunk * 2 <= kChunkKeys && dchunk * 2 * key_bytes <= kDecodeBytes) dchunk *= 2;
  const bool touch = total_keys * key_bytes >= kTouchBytes;
  // With few sequences the pool would idle: one task per chunk (and with fewer chunks than two
  // per thread, per kv head of a chunk: the rows of a head never meet another head's), partial
  // states kept and merged after (while they stay small); else one task per sequence merging its
  // chunks as it goes. The arithmetic is the same either way.
  const int64_t part_floats = chunks * Hq * (D + 2);
  const int64_t head_tasks = chunks < 2 * num_threads() ? Hkv : 1;
  const bool per_chunk = (chunks > S || head_tasks > 1) && S < 4 * num_threads() &&
                         part_floats <= (int64_t{16} << 20);  // <= 64 MB
  std::vector<float> part;
  if (per_chunk) part.resize(part_floats);
  // Runs chunk j of sequence s for kv heads [h0, h1), a fresh online softmax each, into buf's
  // acc / m / l (the queries already in buf.q). The heads of a token are adjacent in a block
  // (NHD), so walking the chunk head after head reads whole blocks from DRAM once (the first
  // head) and from L2 for the others, instead of strided slices (measured: 7B geometry 60 -> 42
  // ms, SmolLM2 ~10% faster, S = 16 x 4096 keys, 1 thread).
  auto run_chunk = [&](RowBuffers& buf, int64_t s, int64_t j, int64_t h0, int64_t h1) {
    int64_t kb, ke;
    chunk_keys(s, j, &kb, &ke);
    const AttnRows all = buf.fresh(Hq, D);
    for (int64_t hq = 0; hq < Hq; ++hq) {
      buf.lo[hq] = static_cast<int32_t>(kb);
      buf.hi[hq] = static_cast<int32_t>(ke);
    }
    const int32_t* bt = a.block_tables + s * a.max_blocks;
    for (int64_t c0 = kb; c0 < ke; c0 += dchunk) {
      const int64_t c1 = std::min(ke, c0 + dchunk);
      if (touch && h1 - h0 == Hkv) touch_keys(c, bt, c0, c1);
      for (int64_t h = h0; h < h1; ++h) {
        const AttnRows r{all.q + h * G * D, all.acc + h * G * D, all.m + h * G, all.l + h * G,
                         all.lo + h * G, all.hi + h * G, G};
        attend(c, bt, h, c0, c1, r);
      }
    }
  };
  auto load_queries = [&](RowBuffers& buf, int64_t s) {
    buf.view(Hq, D);
    for (int64_t i = 0; i < Hq * D; ++i) buf.q[i] = load_q(a.q, a.q_dtype, s * Hq * D + i) * qmul;
  };
  if (!per_chunk) {
    run_tasks(S, [&](int64_t s) {
      thread_local RowBuffers buf;
      load_queries(buf, s);
      for (int64_t j = 0; j < first_chunk[s + 1] - first_chunk[s]; ++j) {
        run_chunk(buf, s, j, 0, Hkv);
        merge_chunk(Hq, D, buf.m.data(), buf.l.data(), buf.acc.data(), buf.M.data(), buf.L.data(), buf.O.data());
      }
      for (int64_t hq = 0; hq < Hq; ++hq)
        finish_row(buf.O.data() + hq * D, buf.L[hq], vmul, D, a.out + (s * Hq + hq) * D);
    });
    return;
  }
  // chunk t's partial: Hq rows of (m, l, acc[D]) at part + t * Hq * (D + 2)
  std::vector<int64_t> chunk_seq(chunks);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t t = first_chunk[s]; t < first_chunk[s + 1]; ++t) chunk_seq[t] = s;
  run_tasks(chunks * head_tasks, [&](int64_t task) {
    const int64_t t = task / head_tasks, s = chunk_seq[t];
    const int64_t h0 = head_tasks > 1 ? task % head_tasks : 0, h1 = head_tasks > 1 ? h0 + 1 : Hkv;
    thread_local RowBuffers buf;
    load_queries(buf, s);
    run_chunk(buf, s, t - first_chunk[s], h0, h1);
    const int64_t r0 = h0 * G, r1 = h1 * G;  // the query rows of these kv heads
    float* p = part.data() + t * Hq * (D + 2);
    std::copy(buf.m.begin() + r0, buf.m.begin() + r1, p + r0);
    std::copy(buf.l.begin() + r0, buf.l.begin() + r1, p + Hq + r0);
    std::copy(buf.acc.begin() + r0 * D, buf.acc.begin() + r1 * D, p + 2 * Hq + r0 * D);
  });
  parallel_for(0, S, 1, [&](int64_t s0, int64_t s1) {
    thread_local RowBuffers buf;
    for (int64_t s = s0; s < s1; ++s) {
      buf.view(Hq, D);
      for (int64_t t = first_chunk[s]; t < first_chunk[s + 1]; ++t) {
        const float* p = part.data() + t * Hq * (D + 2);
        merge_chunk(Hq, D, p, p + Hq, p + 2 * Hq, buf.M.data(), buf.L.data(), buf.O.data());
      }
      for (int64_t hq = 0; hq < Hq; ++hq)
        finish_row(buf.O.data() + hq * D, buf.L[hq], vmul, D, a.out + (s * Hq + hq) * D);
    }
  });
}

// ----------------------------------------------------------------------------------- prefill
void paged_attention_prefill(const PagedAttnArgs& a) {
  check_attention(a, true);
  if (a.num_tokens == 0) return;
  const KvCacheView& c = a.cache;
  const int64_t S = a.num_seqs, Hq = a.num_heads, Hkv = c.num_kv_heads, D = c.head_dim, G = Hq / Hkv;
  const AttendFn attend = pick(isa_level(), c.dtype);
  const float qmul = a.scale * k_fold(c), vmul = v_fold(c);
  // Query tiles of Bq tokens x G heads share every K/V tile they read (kept in L1/L2).
  const int64_t Bq = std::max<int64_t>(1, std::min<int64_t>(16, 64 / G));
  struct Task {
    int64_t seq, head, q0, q1;
  };
  std::vector<Task> tasks;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t n = a.query_start_loc[s + 1] - a.query_start_loc[s];
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t q0 = 0; q0 < n; q0 += Bq) tasks.push_back({s, h, q0, std::min(n, q0 + Bq)});
  }
  // Later query tiles see more keys: run them first so the pool ends evenly.
  std::reverse(tasks.begin(), tasks.end());
  run_tasks(static_cast<int64_t>(tasks.size()), [&](int64_t ti) {
    const Task& t = tasks[ti];
    const int64_t len = a.seq_lens[t.seq], first = a.query_start_loc[t.seq];
    const int64_t n = a.query_start_loc[t.seq + 1] - first;
    const int64_t rows = (t.q1 - t.q0) * G;
    thread_local RowBuffers buf;
    buf.view(rows, D);
    int64_t kb = len, ke = 0;
    for (int64_t i = t.q0; i < t.q1; ++i) {
      const int64_t pos = len - n + i;
      const int64_t lo = a.sliding_window > 0 ? std::max<int64_t>(0, pos + 1 - a.sliding_window) : 0;
      kb = std::min(kb, lo);
      ke = std::max(ke, pos + 1);
      for (int64_t g = 0; g < G; ++g) {
        const int64_t row = (i - t.q0) * G + g;
        const int64_t base = ((first + i) * Hq + t.head * G + g) * D;
        for (int64_t d = 0; d < D; ++d) buf.q[row * D + d] = load_q(a.q, a.q_dtype, base + d) * qmul;
        buf.lo[row] = static_cast<int32_t>(lo);
        buf.hi[row] = static_cast<int32_t>(pos + 1);
      }
    }
    // the decode kernel's chunks (merge_chunk): absolute multiples of kChunkKeys
    for (int64_t c0 = kb / kChunkKeys * kChunkKeys; c0 < ke; c0 += kChunkKeys) {
      const AttnRows rc = buf.fresh(rows, D);
      attend(c, a.block_tables + t.seq * a.max_blocks, t.head, std::max(kb, c0), std::min(ke, c0 + kChunkKeys), rc);
      merge_chunk(rows, D, buf.m.data(), buf.l.data(), buf.acc.data(), buf.M.data(), buf.L.data(), buf.O.data());
    }
    for (int64_t i = t.q0; i < t.q1; ++i)
      for (int64_t g = 0; g < G; ++g) {
        const int64_t row = (i - t.q0) * G + g;
        finish_row(buf.O.data() + row * D, buf.L[row], vmul, D, a.out + ((first + i) * Hq + t.head * G + g) * D);
      }
  });
}

// ------------------------------------------------------------------------- packed attention
// One task per sequence (or per group of its heads when there are few sequences):
// encoder_attention_impl.h gathers the heads' Q/K/V rows into dense scratch and runs S = QK^T,
// softmax, PV there (the L x L block fits in L1/L2 for the short sequences of embedding
// batches). Longest sequences first so the pool ends evenly.
void packed_attention(const PackedAttnArgs& a) {
  IC_CHECK_VALUE(a.num_seqs >= 0 && a.num_tokens >= 0, "qkv: negative dimension");
  IC_CHECK_VALUE(a.num_heads > 0 && a.head_dim > 0, "qkv: expected shape [T, 3, num_heads, head_dim] with dims > 0");
  IC_CHECK_VALUE(a.num_tokens < (int64_t{1} << 31), "qkv: at most 2^31 - 1 tokens");
  IC_CHECK_VALUE(std::isfinite(a.scale), "scale: expected a finite number");
  const int64_t* cu = a.cu_seqlens;
  IC_CHECK_VALUE(cu[0] == 0, "cu_seqlens: must start at 0, got " + std::to_string(cu[0]));
  for (int64_t s = 0; s < a.num_seqs; ++s)
    IC_CHECK_VALUE(cu[s + 1] >= cu[s], idx("cu_seqlens", s + 1) + " = " + std::to_string(cu[s + 1]) +
                                          " is below the previous offset " + std::to_string(cu[s]));
  IC_CHECK_VALUE(cu[a.num_seqs] == a.num_tokens, "cu_seqlens: last offset " + std::to_string(cu[a.num_seqs]) +
                                                     " differs from the token count " + std::to_string(a.num_tokens));
  if (a.num_tokens == 0) return;
  const int64_t H = a.num_heads, D = a.head_dim;
  const IsaLevel level = isa_level();
  const EncoderAttendFn attend = level == IsaLevel::kAvx512 ? encoder_attend_avx512
                                 : level == IsaLevel::kAvx2 ? encoder_attend_avx2
                                                            : encoder_attend_scalar;
  std::vector<int64_t> order;
  for (int64_t s = 0; s < a.num_seqs; ++s)
    if (cu[s + 1] > cu[s]) order.push_back(s);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return cu[x + 1] - cu[x] > cu[y + 1] - cu[y]; });
  // A task is hg heads of a sequence: all of them (each packed row read once, front to back)
  // when there are enough sequences for the pool, fewer so that ~8 tasks per thread exist when not.
  const int64_t seqs = static_cast<int64_t>(order.size()), want = 8 * num_threads();
  const int64_t hg = seqs >= want / 2 ? H : std::max<int64_t>(1, H / std::max<int64_t>(1, want / seqs));
  const int64_t groups = (H + hg - 1) / hg;
  run_tasks(seqs * groups, [&](int64_t ti) {
    const int64_t s = order[ti / groups], h0 = ti % groups * hg;
    thread_local std::vector<float> scratch;
    attend(a.qkv, H, D, cu[s], cu[s + 1] - cu[s], h0, std::min(H, h0 + hg), a.scale, a.out, scratch);
  });
}

}  // namespace infercore
