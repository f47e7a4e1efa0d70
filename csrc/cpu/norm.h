// Row-wise normalisation kernels: l2_normalize and rms_norm over a contiguous [rows, cols]
// array of float32 / float16 / bfloat16, float32 output of the same dtype as the input.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace infercore {

struct NormArgs {
  const void* x = nullptr;         // [rows, cols], C-contiguous, dtype
  void* out = nullptr;             // [rows, cols], C-contiguous, dtype
  const float* weight = nullptr;   // [cols] float32 (rms_norm only)
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kFloat32;
  float eps = 0.f;
  bool stream = false;             // non-temporal stores (output far larger than the caches)
};

enum class NormKind { kL2, kRms };

using NormRowsFn = void (*)(NormKind, const NormArgs&, int64_t row_begin, int64_t row_end);

// Per-ISA entry points (norm.cpp, norm_avx2.cpp, norm_avx512.cpp).
void norm_rows_scalar(NormKind, const NormArgs&, int64_t, int64_t);
void norm_rows_avx2(NormKind, const NormArgs&, int64_t, int64_t);
void norm_rows_avx512(NormKind, const NormArgs&, int64_t, int64_t);

// Validates, picks the ISA variant and splits rows over the thread pool. Call without the GIL.
void norm_forward(NormKind kind, const NormArgs& args);

// LayerNorm of float32 rows with an optional residual added first (BERT's "add & norm"):
// v = x + residual; out = (v - mean(v)) / sqrt(var(v) + eps) * weight + bias. out may alias x
// or residual (each row is read fully before it is written).
struct LayerNormArgs {
  const float* x = nullptr;         // [rows, cols]
  const float* residual = nullptr;  // [rows, cols] or null
  const float* weight = nullptr;    // [cols]
  const float* bias = nullptr;      // [cols]
  float* out = nullptr;             // [rows, cols]
  int64_t rows = 0, cols = 0;
  float eps = 0.f;
};
using LayerNormRowsFn = void (*)(const LayerNormArgs&, int64_t row_begin, int64_t row_end, float* scratch);
void layer_norm_rows_scalar(const LayerNormArgs&, int64_t, int64_t, float*);
void layer_norm_rows_avx2(const LayerNormArgs&, int64_t, int64_t, float*);
void layer_norm_rows_avx512(const LayerNormArgs&, int64_t, int64_t, float*);
void layer_norm_forward(const LayerNormArgs& args);

}  // namespace infercore
