// Fused batched top-k search: for each query, the k corpus rows with the largest inner product
// (or cosine similarity). Never materialises the Q x N score matrix: the corpus is scanned in
// L2-sized blocks, scores are computed for a register tile of queries and go straight through
// a per-query threshold test into a small top-k list (topk_buffer.h).
#pragma once
#include <cstdint>

namespace infercore {

enum class CorpusType : int { kFloat32 = 0, kFloat16 = 1, kInt8 = 2 };

// One scored candidate. Order: higher score first, then lower id (the tie-break every backend uses).
struct TopkEntry {
  float score;
  int64_t id;
};

// A per-query candidate list owned by the dispatcher (topk.cpp) and filled by the ISA kernels.
// Plain data on purpose: it crosses translation units compiled with different ISA flags, so it
// carries no member functions (the operations are static inline in topk_buffer.h).
struct TopkList {
  TopkEntry* data = nullptr;  // capacity `cap` (= 2k): appended until full, then compacted to k
  int64_t n = 0, cap = 0, k = 0;
  float thr = 0.f;            // a candidate with score < thr cannot enter the top k (-inf at start)
};

struct TopkArgs {
  const float* queries = nullptr;    // [Q, d] float32, finite
  int64_t Q = 0, d = 0;
  const void* corpus = nullptr;      // [N, d], C-contiguous
  int64_t N = 0;
  CorpusType ctype = CorpusType::kFloat32;
  const float* corpus_scale = nullptr;  // [N] float32, int8 inner product only
  const uint8_t* mask = nullptr;     // [N] 0/1, optional
  const int64_t* ids = nullptr;      // sorted, unique, in [0, N), optional (exclusive with mask)
  int64_t n_ids = 0;
  bool cosine = false;
  int64_t k = 0;
  float* out_scores = nullptr;       // [Q, k]
  int64_t* out_ids = nullptr;        // [Q, k]
};

// Everything a kernel task needs, prepared once by topk_forward (plain data, see TopkList).
struct TopkWork {
  const TopkArgs* a = nullptr;
  const int8_t* q8 = nullptr;        // [Q, q8_stride] queries quantised per row (int8 corpus only)
  int64_t q8_stride = 0;             // d, or d rounded up to 4 bytes, zero padded (VNNI int8 panels)
  const uint32_t* q8_bias = nullptr; // [Q] VNNI int8 panels only: topk_q8_bias of each q8 row
  const float* qf = nullptr;         // [Q, d] what the float panels read: the queries, or for an
                                     // int8 corpus q8 as floats (exact sums, see topk.cpp)
  const float* qmul = nullptr;       // [Q] per-query score factor: int8 scale and/or 1/|q|
  int64_t block = 0;                 // corpus positions per L2 block
  bool packed = false;               // float corpora, many queries: the panel (GEMM-like) kernel
};

// 128 x the sum of n int8 query bytes, modulo 2^32 like the int32 lanes it is subtracted from
// (the VNNI form sum (c + 128) q - 128 sum q, topk_impl.h). static inline for the reason
// TopkList has no member functions.
static inline uint32_t topk_q8_bias(const int8_t* q, int64_t n) {
  int32_t s = 0;  // |s| <= 127 x 131072
  for (int64_t j = 0; j < n; ++j) s += q[j];
  return 128u * static_cast<uint32_t>(s);
}

// Scratch one task owns: `block` row indices and row factors, and when packed the block as
// float32 panels (kTopkMaxPanel rows interleaved: round_up(block, kTopkMaxPanel) * d floats; the
// VNNI int8 kernel's byte panels take block * ceil(d / 4) floats of it).
struct TopkScratch {
  int64_t* rows = nullptr;
  float* rowmul = nullptr;
  float* panels = nullptr;
};
constexpr int64_t kTopkMaxPanel = 32;

// Scans positions [p0, p1) (rows, or entries of args.ids) for queries [q0, q1); lists[i] is the
// list of query q0 + i. Per-ISA entry points: topk.cpp, topk_avx2.cpp, topk_avx512*.cpp.
using TopkScanFn = void (*)(const TopkWork&, int64_t q0, int64_t q1, int64_t p0, int64_t p1,
                            TopkList* lists, const TopkScratch&);
void topk_scan_scalar(const TopkWork&, int64_t, int64_t, int64_t, int64_t, TopkList*, const TopkScratch&);
void topk_scan_avx2(const TopkWork&, int64_t, int64_t, int64_t, int64_t, TopkList*, const TopkScratch&);
void topk_scan_avx512(const TopkWork&, int64_t, int64_t, int64_t, int64_t, TopkList*, const TopkScratch&);
void topk_scan_avx512vnni(const TopkWork&, int64_t, int64_t, int64_t, int64_t, TopkList*, const TopkScratch&);

// Validates, prepares the queries, splits the work over the thread pool and merges.
// Call without the GIL. Throws std::invalid_argument on bad arguments.
void topk_forward(const TopkArgs& args);

}  // namespace infercore
