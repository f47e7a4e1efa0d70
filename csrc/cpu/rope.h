// Rotary position embeddings applied in place to the leading heads of packed rows (the model's
// fused q|k|v projection output), from precomputed cos/sin tables.
#pragma once
#include <cstdint>

namespace infercore {

struct RopeArgs {
  float* x = nullptr;               // [T, row_stride] float32; heads*head_dim <= row_stride
  int64_t rows = 0, row_stride = 0;
  int64_t heads = 0, head_dim = 0;  // rotate heads [0, heads) of each row
  const int64_t* positions = nullptr;  // [T], each in [0, table_rows)
  const float* cos = nullptr;       // [table_rows, head_dim / 2]
  const float* sin = nullptr;
  bool interleaved = false;         // pairs (2i, 2i+1) (GGUF llama) or (i, i + D/2) (neox)
};

// Validates sizes and positions first (ValueError), then rotates.
void rope_forward(const RopeArgs& a, int64_t table_rows);

}  // namespace infercore
