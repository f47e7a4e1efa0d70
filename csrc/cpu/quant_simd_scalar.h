// Portable "vector" ops for the quantized linear kernels (linear_impl.h). Same interface as
// quant_simd_avx2.h / quant_simd_avx512.h, one lane at a time: the scalar level is the plain
// reference that runs the very same kernel templates.
//   F: W float lanes. I: 32 int8 lanes (one block). IAcc: int32 partial sums of a block dot.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/dtype.h"
#include "fp8.h"
#include "quant16_common.h"

namespace infercore {
namespace {

// N float lanes for the scalar R4/R8 accumulators: one element-wise loop per operation, with
// std::fma so every ISA level rounds alike.
template <int N>
struct Lanes {
  float v[N];
  static Lanes mul(const Lanes& a, const Lanes& b) {
    Lanes r;
    for (int i = 0; i < N; ++i) r.v[i] = a.v[i] * b.v[i];
    return r;
  }
  static Lanes fma(const Lanes& a, const Lanes& b, const Lanes& c) {
    Lanes r;
    for (int i = 0; i < N; ++i) r.v[i] = std::fma(a.v[i], b.v[i], c.v[i]);
    return r;
  }
  static Lanes add(const Lanes& a, const Lanes& b) {
    Lanes r;
    for (int i = 0; i < N; ++i) r.v[i] = a.v[i] + b.v[i];
    return r;
  }
  static Lanes set1(float s) {
    Lanes r;
    for (float& x : r.v) x = s;
    return r;
  }
};

struct QScalar {
  static constexpr int W = 1;
  using F = float;
  struct I {
    int8_t v[32];
  };
  using IAcc = int32_t;

  static float h2f(uint16_t h) { return half_to_float(h); }
  static F zero() { return 0.f; }
  static F set1(float v) { return v; }
  static F load(const float* p) { return *p; }
  static F mul(F a, F b) { return a * b; }
  static F fma(F a, F b, F c) { return a * b + c; }
  static float hsum(F a) { return a; }

  // Decoders: 32 consecutive weights -> 32/W float vectors.
  static void dec_f32(const float* w, F* o) { std::memcpy(o, w, 32 * sizeof(float)); }
  static void dec_f16(const uint16_t* w, F* o) {
    for (int i = 0; i < 32; ++i) o[i] = half_to_float(w[i]);
  }
  static void dec_bf16(const uint16_t* w, F* o) {
    for (int i = 0; i < 32; ++i) o[i] = bf16_to_float(w[i]);
  }
  // E4M3 times 2^-8 (the SIMD levels decode through binary16; the caller scales by 256).
  static void dec_fp8(const uint8_t* w, F* o) {
    for (int i = 0; i < 32; ++i) o[i] = fp8_e4m3_decode(w[i]) * (1.0f / 256.0f);
  }
  static I load_i8(const int8_t* p) {
    I r;
    std::memcpy(r.v, p, 32);
    return r;
  }
  // 16 bytes: element i in the low nibble of byte i, element i+16 in the high nibble (0..15).
  static I load_q4(const uint8_t* q) {
    I r;
    for (int i = 0; i < 16; ++i) {
      r.v[i] = static_cast<int8_t>(q[i] & 0xF);
      r.v[i + 16] = static_cast<int8_t>(q[i] >> 4);
    }
    return r;
  }
  // w in [-128, 127] (signed) or [0, 15] (unsigned nibbles); x in [-127, 127].
  static IAcc dot_ss(const I& w, const I& x) {
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += static_cast<int32_t>(w.v[i]) * x.v[i];
    return s;
  }
  static IAcc dot_us(const I& w, const I& x) { return dot_ss(w, x); }
  static IAcc izero() { return 0; }
  static IAcc iadd(IAcc a, IAcc b) { return a + b; }
  static int32_t ihsum(IAcc a) { return a; }
  static F to_f(IAcc a) { return static_cast<float>(a); }

  // int16-pair GEMM (gemm_int16_impl.h). P holds W int32 lanes; as a pair operand each lane is
  // two int16 values (bits 0-15: the lower k, bits 16-31: k + 1), the way vpmaddwd reads them.
  using P = int32_t;
  static P pzero() { return 0; }
  static P pload(const int16_t* p) {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static P pbcast(const int16_t* p) { return pload(p); }
  static P pmadd(P acc, P a, P b) {
    const auto lo = [](P v) { return static_cast<int32_t>(static_cast<int16_t>(v & 0xFFFF)); };
    const auto hi = [](P v) { return static_cast<int32_t>(static_cast<int16_t>(static_cast<uint32_t>(v) >> 16)); };
    return acc + lo(a) * lo(b) + hi(a) * hi(b);
  }
  static void pstore(int32_t* o, P v) { *o = v; }
  // Row quantization to int16 codes: max |x| (and whether every value is finite), then
  // q = clamp(rint(x * inv), -32767, 32767) with IEEE float32 multiply and round-half-even.
  static float absmax(const float* x, int64_t n, bool* finite) {
    return absmax_finish(nullptr, nullptr, 0, x, 0, n, finite);
  }
  static void quant16(const float* x, int64_t n, float inv, int16_t* q) {
    for (int64_t i = 0; i < n; ++i) q[i] = code16(x[i] * inv);
  }
  // int8 codes q = clamp(rint(x / d), -127, 127) (IEEE division, d > 0); returns sum(q).
  static int32_t quant8(const float* x, int64_t n, float d, int8_t* q) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; ++i) s += q[i] = code8(x[i], d);
    return s;
  }

  // Four-row accumulators (see quant_simd_r4_x86.h).
  using R4 = Lanes<4>;
  static R4 r4_zero() { return R4::set1(0.f); }
  static R4 r4_set1(float s) { return R4::set1(s); }
  static R4 r4_halves(uint16_t a, uint16_t b, uint16_t c, uint16_t d) {
    return R4{{half_to_float(a), half_to_float(b), half_to_float(c), half_to_float(d)}};
  }
  static R4 r4_mul(const R4& a, const R4& b) { return R4::mul(a, b); }
  static R4 r4_fma(const R4& a, const R4& b, const R4& c) { return R4::fma(a, b, c); }
  static R4 r4_dots(IAcc p0, IAcc p1, IAcc p2, IAcc p3) {
    return R4{{static_cast<float>(p0), static_cast<float>(p1), static_cast<float>(p2), static_cast<float>(p3)}};
  }
  static void r4_store(const R4& v, float* o) { std::memcpy(o, v.v, sizeof(v.v)); }

  // Eight-row interleaved block dots (see quant_simd_r8_x86.h): lane l of a group is row l.
  using R8 = Lanes<8>;
  struct S8 {
    int32_t v[8];
  };
  using G8 = I;
  static R8 r8_zero() { return R8::set1(0.f); }
  static R8 r8_set1(float s) { return R8::set1(s); }
  static R8 r8_load(const float* p) {
    R8 r;
    std::memcpy(r.v, p, sizeof(r.v));
    return r;
  }
  static void r8_store(const R8& v, float* p) { std::memcpy(p, v.v, sizeof(v.v)); }
  static R8 r8_mul(const R8& a, const R8& b) { return R8::mul(a, b); }
  static R8 r8_fma(const R8& a, const R8& b, const R8& c) { return R8::fma(a, b, c); }
  static R8 r8_add(const R8& a, const R8& b) { return R8::add(a, b); }
  static R8 r8_halves(const uint16_t* h) {
    R8 r;
    for (int i = 0; i < 8; ++i) r.v[i] = half_to_float(h[i]);
    return r;
  }
  static S8 s8_zero() { return S8{}; }
  static G8 g8_load(const uint8_t* p) {
    G8 r;
    std::memcpy(r.v, p, 32);
    return r;
  }
  static void g8_store(const G8& v, uint8_t* p) { std::memcpy(p, v.v, 32); }
  static S8 r8_dot(S8 acc, const G8& w, const int8_t* x4) {
    for (int l = 0; l < 8; ++l)
      for (int i = 0; i < 4; ++i) acc.v[l] += static_cast<int32_t>(w.v[4 * l + i]) * x4[i];
    return acc;
  }
  static R8 r8_sum(const S8& acc) {
    R8 r;
    for (int l = 0; l < 8; ++l) r.v[l] = static_cast<float>(acc.v[l]);
    return r;
  }
  // q8_0 (signed weights): the scalar dot reads the signed group only; g8_abs keeps the panel
  // layout of the SIMD levels (their |w| group) and is not read here.
  static G8 g8_abs(const G8& w) { return w; }
  static S8 r8_dot_s(S8 acc, const G8& /*wa*/, const G8& ws, const int8_t* x4) { return r8_dot(acc, ws, x4); }
  static R8 r8_sum32(const S8& acc) { return r8_sum(acc); }
  static void g8_transpose(const G8* rows, G8* out) {
    for (int g = 0; g < 8; ++g)
      for (int l = 0; l < 8; ++l) std::memcpy(out[g].v + 4 * l, rows[l].v + 4 * g, 4);
  }
};

}  // namespace
}  // namespace infercore
