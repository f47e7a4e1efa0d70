// The norm kernels written once over a vector type V (VecAvx2 or VecAvx512). Included inside
// an anonymous namespace by each ISA translation unit, after <cmath>, norm.h and the
// vector header (so the instantiations have internal linkage and never mix across ISAs).
//
// Napkin math, per row of n elements of b bytes: read n*b (a second read of the row hits L1/L2
// for rows up to ~64k floats), write n*b, ~4n flops. Arithmetic intensity ~0.5 flop/byte, so
// both ops are bound by memory bandwidth: the target is the streaming-read probe's GB/s for
// (read + write) bytes. Output arrays larger than the caches use non-temporal stores, which
// skip the read-for-ownership of every output line (1/3 fewer DRAM bytes).
// Sums of squares accumulate in double: exact enough that float32 results are within 2 ulp of
// the float64 reference for any row length.
template <DType T>
inline float scalar_load(const void* p, int64_t i) {
  if constexpr (T == DType::kFloat32) return static_cast<const float*>(p)[i];
  else if constexpr (T == DType::kFloat16) return half_to_float(static_cast<const uint16_t*>(p)[i]);
  else return bf16_to_float(static_cast<const uint16_t*>(p)[i]);
}

template <DType T>
inline void scalar_store(void* p, int64_t i, float v) {
  if constexpr (T == DType::kFloat32) static_cast<float*>(p)[i] = v;
  else if constexpr (T == DType::kFloat16) static_cast<uint16_t*>(p)[i] = float_to_half(v);
  else static_cast<uint16_t*>(p)[i] = float_to_bf16(v);
}

template <class V, DType T>
double row_sum_squares(const char* x, int64_t n) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  typename V::DAcc acc0, acc1;
  int64_t j = 0;
  for (; j + 2 * V::W <= n; j += 2 * V::W) {
    V::acc_squares(acc0, V::template load<T>(x + j * b));
    V::acc_squares(acc1, V::template load<T>(x + (j + V::W) * b));
  }
  for (; j + V::W <= n; j += V::W) V::acc_squares(acc0, V::template load<T>(x + j * b));
  double s = V::sum(acc0) + V::sum(acc1);
  for (; j < n; ++j) {
    double v = scalar_load<T>(x, j);
    s += v * v;
  }
  return s;
}

// y[j] = x[j] * scale * (w ? w[j] : 1)
template <class V, DType T, bool kStream>
void row_scale(const char* x, char* y, const float* w, float scale, int64_t n) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  constexpr uintptr_t align = static_cast<uintptr_t>(V::W * b);
  int64_t j = 0;
  if constexpr (kStream) {  // peel to the store alignment
    for (; j < n && (reinterpret_cast<uintptr_t>(y + j * b) % align) != 0; ++j)
      scalar_store<T>(y, j, scalar_load<T>(x, j) * scale * (w ? w[j] : 1.f));
  }
  const typename V::F s = V::set1(scale);
  if (w != nullptr) {
    for (; j + V::W <= n; j += V::W)
      V::template store<T, kStream>(y + j * b, V::mul(V::mul(V::template load<T>(x + j * b), s), V::loadw(w + j)));
  } else {
    for (; j + V::W <= n; j += V::W)
      V::template store<T, kStream>(y + j * b, V::mul(V::template load<T>(x + j * b), s));
  }
  for (; j < n; ++j) scalar_store<T>(y, j, scalar_load<T>(x, j) * scale * (w ? w[j] : 1.f));
}

template <class V, DType T>
void norm_rows_t(NormKind kind, const NormArgs& a, int64_t r0, int64_t r1) {
  constexpr int64_t b = T == DType::kFloat32 ? 4 : 2;
  const int64_t n = a.cols;
  for (int64_t r = r0; r < r1; ++r) {
    const char* x = static_cast<const char*>(a.x) + r * n * b;
    char* y = static_cast<char*>(a.out) + r * n * b;
    const double ss = row_sum_squares<V, T>(x, n);
    float scale;
    if (kind == NormKind::kRms) {
      scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + a.eps));
    } else {
      const double norm = std::sqrt(ss);
      scale = static_cast<float>(1.0 / (norm < a.eps ? static_cast<double>(a.eps) : norm));
    }
    const float* w = kind == NormKind::kRms ? a.weight : nullptr;
    if (a.stream) row_scale<V, T, true>(x, y, w, scale, n);
    else row_scale<V, T, false>(x, y, w, scale, n);
  }
  if (a.stream) V::fence();
}

template <class V>
void norm_rows_dispatch(NormKind kind, const NormArgs& a, int64_t r0, int64_t r1) {
  switch (a.dtype) {
    case DType::kFloat32: norm_rows_t<V, DType::kFloat32>(kind, a, r0, r1); break;
    case DType::kFloat16: norm_rows_t<V, DType::kFloat16>(kind, a, r0, r1); break;
    case DType::kBFloat16: norm_rows_t<V, DType::kBFloat16>(kind, a, r0, r1); break;
  }
}

// LayerNorm (norm.h LayerNormArgs). Per row of n floats: read x (+ residual), write out once;
// the row is summed into `scratch` first (so out may alias an input), then mean and the
// two-pass variance come from float lanes over the L1-resident scratch row: ~8n flops for
// 8n-12n bytes, memory-bound like the other norms.
template <class V>
void layer_norm_rows(const LayerNormArgs& a, int64_t r0, int64_t r1, float* v) {
  const int64_t n = a.cols;
  const typename V::F one = V::set1(1.f);
  for (int64_t r = r0; r < r1; ++r) {
    const float* x = a.x + r * n;
    const float* res = a.residual ? a.residual + r * n : nullptr;
    float* y = a.out + r * n;
    typename V::F acc = V::zero();
    int64_t j = 0;
    for (; j + V::W <= n; j += V::W) {
      typename V::F t = V::loadw(x + j);
      if (res) t = V::fmadd(t, one, V::loadw(res + j));  // x * 1 + r: one exact add
      V::template store<DType::kFloat32, false>(v + j, t);
      acc = V::fmadd(t, one, acc);
    }
    float sum = V::hsum(acc);
    for (; j < n; ++j) {
      v[j] = res ? x[j] + res[j] : x[j];
      sum += v[j];
    }
    const float mean = sum / static_cast<float>(n);
    const typename V::F neg_mean = V::set1(-mean);
    typename V::F sq = V::zero();
    for (j = 0; j + V::W <= n; j += V::W) {
      const typename V::F c = V::fmadd(V::loadw(v + j), one, neg_mean);
      sq = V::fmadd(c, c, sq);
    }
    float var = V::hsum(sq);
    for (; j < n; ++j) var += (v[j] - mean) * (v[j] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) / static_cast<double>(n) + a.eps));
    const typename V::F rs = V::set1(rstd);
    for (j = 0; j + V::W <= n; j += V::W) {
      const typename V::F c = V::mul(V::fmadd(V::loadw(v + j), one, neg_mean), rs);
      V::template store<DType::kFloat32, false>(y + j, V::fmadd(c, V::loadw(a.weight + j), V::loadw(a.bias + j)));
    }
    for (; j < n; ++j) y[j] = (v[j] - mean) * rstd * a.weight[j] + a.bias[j];
  }
}

