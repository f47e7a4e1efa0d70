// Launchers of the CUDA linear kernels (host side, no pybind11). See linear.cu.
#pragma once
#include <cstdint>

namespace infercore {
namespace cuda {

// Weight kinds: the codes of quant.weight.KIND_CODES / csrc/cpu/linear.h's WKind.
// 0 f32, 1 f16, 2 bf16 (bits), 3 fp8 E4M3 (+ scale f32 [N]), 4 int8 (+ scale f32 [N], W8A8),
// 5 int4 (+ scale f16 [N, K/group]), 6 q8_0, 7 q4_0, 8 q4_1 (ggml blocks of 32).
constexpr int kLinearGemvMaxRows = 8;

// Bytes of device scratch linear_gemv_launch needs: int8 activation codes + scales for the
// quantized kinds, a float32 copy of x for the float kinds when x is float16/bfloat16; 0 if none.
// Throws std::invalid_argument on a bad kind/dtype/size.
int64_t linear_gemv_workspace_bytes(int kind, int64_t M, int64_t K, int x_dtype);

// y [M, N] (x_dtype: 0 f32, 1 f16, 2 bf16; y has x's dtype) = x [M, K] @ W.T (+ bias f32 [N]),
// for 1 <= M <= 8, on `stream`. w: the packed weight bytes exactly as QuantizedWeight holds
// them; scale: f32 [N] (int8, fp8), f16 [N, K/group] (int4), else 0; group: int4's group size.
// workspace: linear_gemv_workspace_bytes(...) bytes, 16-byte aligned. Validates every size and
// pointer (std::invalid_argument) before launching.
void linear_gemv_launch(int kind, uintptr_t x, int x_dtype, uintptr_t w, uintptr_t scale, int64_t group,
                        uintptr_t bias, uintptr_t out, uintptr_t workspace, int64_t workspace_bytes, int64_t M,
                        int64_t N, int64_t K, uintptr_t stream);

}  // namespace cuda
}  // namespace infercore
