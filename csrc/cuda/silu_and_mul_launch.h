// Launcher of the CUDA silu_and_mul kernel (host side, no pybind11). See silu_and_mul.cu.
#pragma once
#include <cstdint>

namespace infercore {
namespace cuda {

// out [rows, inner] = silu(x[:, :inner]) * x[:, inner:] for x [rows, 2 * inner], both contiguous,
// dtype 0 f32, 1 f16, 2 bf16 (out has x's dtype), float32 math, on `stream`. out must not overlap
// x. Validates every size and pointer (std::invalid_argument) before launching.
void silu_and_mul_launch(uintptr_t x, uintptr_t out, int64_t rows, int64_t inner, int dtype, uintptr_t stream);

}  // namespace cuda
}  // namespace infercore
