// Element-wise format conversions used by infercore.quant (fp8 encode/decode over arrays).
#pragma once
#include <cstdint>

namespace infercore {

enum class Fp8Format : int { kE4M3 = 0, kE5M2 = 1 };

// n elements, split over the thread pool. Call without the GIL.
void fp8_encode(Fp8Format fmt, const float* x, uint8_t* out, int64_t n, bool saturate);
void fp8_decode(Fp8Format fmt, const uint8_t* bits, float* out, int64_t n);

}  // namespace infercore
