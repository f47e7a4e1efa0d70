// Launcher of the CUDA RoPE kernel (host side, no pybind11). See rope.cu.
#pragma once
#include <cstdint>

namespace infercore {
namespace cuda {

// Rotates heads [0, heads) of each row of x [rows, width] float32 (contiguous) in place by the
// table rows cos/sin[positions[t]] (float32 [table_rows, head_dim / 2], positions int64 [rows]);
// pairs (2i, 2i + 1) when interleaved, else (i, i + head_dim / 2). A row whose position is outside
// [0, table_rows) is left unchanged (positions live on the device: the Python op checks them
// first). Validates every size and pointer (std::invalid_argument) before launching on `stream`.
void rope_launch(uintptr_t x, int64_t rows, int64_t width, int64_t heads, int64_t head_dim, uintptr_t positions,
                 uintptr_t cos, uintptr_t sin, int64_t table_rows, bool interleaved, uintptr_t stream);

}  // namespace cuda
}  // namespace infercore
