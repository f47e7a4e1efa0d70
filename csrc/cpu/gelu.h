// Elementwise GELU over a flat contiguous array of float32 / float16 / bfloat16, output of the
// same dtype: exact (erf, as BERT uses it) or the tanh approximation (GPT-2's).
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace infercore {

struct GeluArgs {
  const void* x = nullptr;  // [n], contiguous, dtype
  void* out = nullptr;      // [n], contiguous, dtype; may equal x (in place), never partially overlap
  int64_t n = 0;
  DType dtype = DType::kFloat32;
  bool tanh = false;        // false: x * Phi(x) with erf; true: the tanh approximation
  bool stream = false;      // non-temporal stores (set by gelu_forward for large out-of-place outputs)
};

using GeluRangeFn = void (*)(const GeluArgs&, int64_t begin, int64_t end);

// Per-ISA entry points (gelu.cpp, gelu_avx2.cpp, gelu_avx512.cpp): elements [begin, end).
void gelu_range_scalar(const GeluArgs&, int64_t, int64_t);
void gelu_range_avx2(const GeluArgs&, int64_t, int64_t);
void gelu_range_avx512(const GeluArgs&, int64_t, int64_t);

// Validates, picks the ISA variant and splits the array over the thread pool. Call without the GIL.
void gelu_forward(const GeluArgs& args);

// Exact (erf) GELU in place on a float32 block of `rows` rows x `cols` values, rows `ld` apart,
// on the calling thread at the current ISA level: the fused epilogue of ops.linear(activation=
// "gelu") (linear.cpp runs it on each task's output block while it is still in L2). Same bits
// as gelu_forward on each value.
void gelu_rows_f32(float* y, int64_t ld, int64_t rows, int64_t cols);

}  // namespace infercore
