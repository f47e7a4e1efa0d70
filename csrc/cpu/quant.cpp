// fp8 array conversions. Memory-bound (5 bytes per element); the scalar code is branchy but
// runs at a few GB/s per core, far below what the rest of quantize_weight costs in numpy.
#include "quant.h"

#include "../core/thread_pool.h"
#include "fp8.h"

namespace infercore {

void fp8_encode(Fp8Format fmt, const float* x, uint8_t* out, int64_t n, bool saturate) {
  parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
    if (fmt == Fp8Format::kE4M3) {
      for (int64_t i = lo; i < hi; ++i) out[i] = fp8_e4m3_encode(x[i], saturate);
    } else {
      for (int64_t i = lo; i < hi; ++i) out[i] = fp8_e5m2_encode(x[i], saturate);
    }
  });
}

void fp8_decode(Fp8Format fmt, const uint8_t* bits, float* out, int64_t n) {
  float lut[256];
  for (int b = 0; b < 256; ++b)
    lut[b] = fmt == Fp8Format::kE4M3 ? fp8_e4m3_decode(static_cast<uint8_t>(b)) : fp8_e5m2_decode(static_cast<uint8_t>(b));
  parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = lut[bits[i]];
  });
}

}  // namespace infercore
