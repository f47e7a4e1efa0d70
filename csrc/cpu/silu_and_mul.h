// silu_and_mul (the gated MLP activation of Llama-family models, vLLM's op of the same name):
// out[r, j] = silu(x[r, j]) * x[r, I + j] for x [rows, 2I] and out [rows, I], float32 / float16 /
// bfloat16 in and out (same dtype), float32 math.
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace infercore {

struct SiluMulArgs {
  const void* x = nullptr;  // [rows, 2 * inner], contiguous, dtype
  void* out = nullptr;      // [rows, inner], contiguous, dtype; must not overlap x at all
  int64_t rows = 0, inner = 0;
  DType dtype = DType::kFloat32;
  bool stream = false;      // non-temporal stores (set by silu_and_mul_forward for large outputs)
};

// Per-ISA entry points (silu_and_mul.cpp, _avx2.cpp, _avx512.cpp): row r, columns [c0, c1).
using SiluMulRangeFn = void (*)(const SiluMulArgs&, int64_t r, int64_t c0, int64_t c1);
void silu_and_mul_range_scalar(const SiluMulArgs&, int64_t, int64_t, int64_t);
void silu_and_mul_range_avx2(const SiluMulArgs&, int64_t, int64_t, int64_t);
void silu_and_mul_range_avx512(const SiluMulArgs&, int64_t, int64_t, int64_t);

// Validates (ValueError), picks the ISA variant and splits the rows (and long rows) over the
// thread pool. Call without the GIL.
void silu_and_mul_forward(const SiluMulArgs& args);

}  // namespace infercore
