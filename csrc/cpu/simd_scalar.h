// One-lane "vector" with the VecAvx2 interface: the portable scalar level runs the very same
// kernel templates, so the scalar build is the plain reference next to the SIMD ones.
#pragma once
#include <cstdint>
#include <cstring>

#include "../core/dtype.h"

namespace infercore {
namespace {

struct VecScalar {
  static constexpr int W = 1;
  using F = float;
  struct DAcc {
    double s = 0.0;
  };

  static F set1(float v) { return v; }
  static F mul(F a, F b) { return a * b; }
  static F loadw(const float* p) { return *p; }
  static F zero() { return 0.f; }
  static F fmadd(F a, F b, F acc) { return a * b + acc; }  // no FMA unit assumed at this level
  static float fma_s(float a, float b, float acc) { return a * b + acc; }
  static float hsum(F v) { return v; }

  template <DType T>
  static F load(const void* p) {
    if constexpr (T == DType::kFloat32) return *static_cast<const float*>(p);
    else if constexpr (T == DType::kFloat16) return half_to_float(*static_cast<const uint16_t*>(p));
    else return bf16_to_float(*static_cast<const uint16_t*>(p));
  }

  template <DType T, bool kStream>
  static void store(void* p, F v) {
    if constexpr (T == DType::kFloat32) *static_cast<float*>(p) = v;
    else if constexpr (T == DType::kFloat16) *static_cast<uint16_t*>(p) = float_to_half(v);
    else *static_cast<uint16_t*>(p) = float_to_bf16(v);
  }

  static void acc_squares(DAcc& a, F v) { a.s += static_cast<double>(v) * v; }
  static double sum(const DAcc& a) { return a.s; }
  static void fence() {}
};

}  // namespace
}  // namespace infercore
