// Token sampling from one row of next-token logits: temperature, top-k, top-p and min-p, then the
// inverse CDF at a caller-given uniform u. The engine's sampler (engine/sampler.py) calls it once
// per sampled row; its float64 numpy definition (`filtered_probs` + searchsorted) is the spec.
#pragma once
#include <cstdint>

namespace infercore {

struct SampleArgs {
  const float* logits = nullptr;  // [vocab]; -inf = masked out; NaN and +inf are errors
  int64_t vocab = 0;
  double temperature = 1.0;       // > 0 (greedy rows never come here)
  int64_t top_k = 0;              // 0 (or >= vocab) = no top-k
  double top_p = 1.0;             // (0, 1]
  double min_p = 0.0;             // [0, 1]
  double u = 0.0;                 // [0, 1): the request's own uniform draw
};

// The sampled token id. Validates every argument first (ValueError naming it).
int64_t sample_token(const SampleArgs& args);

// For log-probabilities: *max = the largest logit; when it is finite, *log_total = log(sum over
// the row of exp(x - max)) (float32 exponentials added in float64) and top[0, n) = the n largest
// logits' ids in (logit desc, id asc) order (n <= vocab). Returns false, touching nothing else,
// when the max is +-inf (the caller's own conventions apply). NaN raises ValueError.
bool sample_logprobs(const float* logits, int64_t vocab, int64_t n, float* max, double* log_total, int32_t* top);

// One ISA's whole-vocabulary passes (sample_impl.h), used by sample_token.
struct SampleScan {
  float max = 0.f;   // largest logit (meaningless when nan)
  bool nan = false;  // any NaN
};
using SampleScanFn = SampleScan (*)(const float* x, int64_t n);
// The sum over the row of exp((x - m) * inv_t): float32 exponentials (~1e-7 relative) added in
// float64.
using SampleTotalFn = double (*)(const float* x, int64_t n, float m, float inv_t);
// ids of the logits >= tau, in increasing id order, into ids (room for n); returns how many.
using SampleCollectFn = int64_t (*)(const float* x, int64_t n, float tau, int32_t* ids);
SampleScan sample_scan_scalar(const float* x, int64_t n);
SampleScan sample_scan_avx2(const float* x, int64_t n);
double sample_total_scalar(const float* x, int64_t n, float m, float inv_t);
double sample_total_avx2(const float* x, int64_t n, float m, float inv_t);
int64_t sample_collect_scalar(const float* x, int64_t n, float tau, int32_t* ids);
int64_t sample_collect_avx2(const float* x, int64_t n, float tau, int32_t* ids);

}  // namespace infercore
