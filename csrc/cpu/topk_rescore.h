// Exact re-ranking of candidate rows: the refine step of ops.topk_inner_product/topk_cosine
// (refine=) and of VectorIndex(refine=...). The scan over a quantised corpus returns each
// query's k * refine_factor best ids; this re-scores those rows on a float32/float16 copy with
// float64 sums and keeps the best k, ties to the lower id.
#pragma once
#include <cstdint>

namespace infercore {

struct RescoreArgs {
  const float* queries = nullptr;  // [Q, d]
  int64_t Q = 0, d = 0;
  const void* rows = nullptr;      // [N, d] float32 or float16 (rows_f16)
  bool rows_f16 = false;
  int64_t N = 0;
  const int64_t* cand = nullptr;   // [Q, m]; -1 = no candidate
  int64_t m = 0;
  int64_t k = 0;
  bool cosine = false;             // score / (|row| |query|); a zero row or query scores 0
  float* out_scores = nullptr;     // [Q, k], padded with -inf
  int64_t* out_ids = nullptr;      // [Q, k], padded with -1
};

// Validates (throws std::invalid_argument naming the argument), then re-ranks in parallel over
// the queries. A candidate whose dot product is NaN (a row with NaN) is dropped, for cosine too.
// Call without the GIL.
void topk_rescore(const RescoreArgs& args);

}  // namespace infercore
