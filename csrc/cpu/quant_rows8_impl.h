// int8 activation codes for the W8A8 and block-scaled linear kernels, written over the ops
// struct Q (one instantiation per ISA, like quant_rows16). Included by linear_impl.h.
//   per_row (int8 weights): one scale per row, d = absmax / 127 over the whole row.
//   otherwise (q8_0, q4_0, q4_1, int4): one scale per block of 32 values, and for the 4-bit kinds
//   ds = d * sum(q) of the block (their offset term).
// q = clamp(rint(x / d), -127, 127) with IEEE division; a span holding NaN/inf gets d = NaN and
// q = 0 (its outputs come out NaN); an all-zero span (or one whose absmax / 127 underflows)
// d = 0, q = 0. Napkin: one division per value
// (~0.5 cycle vectorized vs ~15 for the libm nearbyintf + divss of the scalar loop it replaces:
// 110 of 330 us for a 16-row down projection of SmolLM2).
template <class Q>
float quant_span8(const float* x, int64_t n, int8_t* q, int32_t* qsum) {
  bool finite = true;
  const float d = Q::absmax(x, n, &finite) / 127.0f;
  if (!finite || !(d > 0.0f)) {  // d == 0 also when a tiny absmax underflows
    std::memset(q, 0, static_cast<size_t>(n));
    *qsum = 0;
    return finite ? d : std::nanf("");
  }
  *qsum = Q::quant8(x, n, d, q);
  return d;
}

// Rows [m0, m1) of x [M, K] -> q [M, kp] (zero padded past K), d and ds (see above).
template <class Q>
void quant_rows8(const float* x, int64_t K, int64_t kp, bool per_row, int64_t m0, int64_t m1, int8_t* q, float* d,
                 float* ds) {
  const int64_t nb = K / 32;
  for (int64_t m = m0; m < m1; ++m) {
    const float* row = x + m * K;
    int8_t* qr = q + m * kp;
    int32_t s = 0;
    if (per_row) {
      d[m] = quant_span8<Q>(row, K, qr, &s);
    } else {
      for (int64_t b = 0; b < nb; ++b) {
        const float db = quant_span8<Q>(row + b * 32, 32, qr + b * 32, &s);
        d[m * nb + b] = db;
        if (ds) ds[m * nb + b] = db * static_cast<float>(s);
      }
    }
    for (int64_t k = per_row ? K : nb * 32; k < kp; ++k) qr[k] = 0;
  }
}
