// Scalar instantiation of the linear kernels, activation quantization, and the driver that
// picks the ISA variant and splits (weight panel x activation block) tasks over the pool.
#include "linear.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "fp8.h"
#include "gelu.h"
#include "quant_simd_scalar.h"
#include "thread_buffer.h"

namespace infercore {
namespace {
#include "linear_impl.h"

LinearTileFn pick(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return cpu_features().avx512_vnni ? linear_tile_avx512vnni : linear_tile_avx512;
    case IsaLevel::kAvx2: return linear_tile_avx2;
    default: return linear_tile_scalar;
  }
}

QuantRows16Fn pick_quant16(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return quant_rows16_avx512;
    case IsaLevel::kAvx2: return quant_rows16_avx2;
    default: return quant_rows16_scalar;
  }
}

bool quantized_acts(WKind k) {
  return k == WKind::kInt8 || k == WKind::kInt4 || k == WKind::kQ8_0 || k == WKind::kQ4_0 || k == WKind::kQ4_1;
}

QuantRows8Fn pick_quant8(IsaLevel level) {
  switch (level) {
    case IsaLevel::kAvx512: return quant_rows8_avx512;
    case IsaLevel::kAvx2: return quant_rows8_avx2;
    default: return quant_rows8_scalar;
  }
}

struct ActBuffers {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int16_t> q16;
};

QuantActs quantize_acts(const LinearArgs& a, ActBuffers& buf) {
  QuantActs qa;
  const int64_t kp = (a.K + 31) / 32 * 32, nb = a.K / 32;
  qa.kp = kp;
  buf.q.resize(static_cast<size_t>(a.M * kp));  // quant_rows8 writes every code, padding included
  const bool per_row = a.kind == WKind::kInt8;
  buf.d.resize(static_cast<size_t>(per_row ? a.M : a.M * nb));  // every scale is written too
  if (a.kind != WKind::kInt8 && a.kind != WKind::kQ8_0) buf.ds.resize(static_cast<size_t>(a.M * nb));
  const QuantRows8Fn fn = pick_quant8(isa_level());
  float* ds = buf.ds.empty() ? nullptr : buf.ds.data();
  parallel_for(0, a.M, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.K)), [&](int64_t r0, int64_t r1) {
    if (a.act_scale == nullptr) return fn(a.x, a.K, kp, per_row, r0, r1, buf.q.data(), buf.d.data(), ds);
    float* tmp = thread_pack_buffer<float, 1>(a.K);  // x * act_scale, one row at a time (int8 only)
    for (int64_t m = r0; m < r1; ++m)
      fn(act_row(a, m, tmp), a.K, kp, per_row, 0, 1, buf.q.data() + m * kp, buf.d.data() + m, nullptr);
  });
  qa.q = buf.q.data();
  qa.d = buf.d.data();
  qa.ds = buf.ds.empty() ? nullptr : buf.ds.data();
  return qa;
}

// int16 activation codes for the int8 GEMM (gemm_int16_impl.h), rows split over the pool.
QuantActs quantize_acts16(const LinearArgs& a, ActBuffers& buf) {
  QuantActs qa;
  qa.kp2 = (a.K + 1) / 2 * 2;
  buf.q16.resize(static_cast<size_t>(a.M * qa.kp2));
  buf.d.resize(static_cast<size_t>(a.M));
  const QuantRows16Fn fn = pick_quant16(isa_level());
  parallel_for(0, a.M, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.K)), [&](int64_t r0, int64_t r1) {
    if (a.act_scale == nullptr) return fn(a.x, a.K, qa.kp2, r0, r1, buf.q16.data(), buf.d.data());
    float* tmp = thread_pack_buffer<float, 1>(a.K);
    for (int64_t m = r0; m < r1; ++m)
      fn(act_row(a, m, tmp), a.K, qa.kp2, 0, 1, buf.q16.data() + m * qa.kp2, buf.d.data() + m);
  });
  qa.q16 = buf.q16.data();
  qa.d = buf.d.data();
  return qa;
}

// precision "high" off AMX: the dot-product tiles' int8 codes per row (quantize_acts, W8A8)
// widened to int16 for the int16 GEMM, which then sums exactly what the tiles sum; with the
// tiles' two-rounding epilogue (gemm_int16_impl.h, qa.a8) every row gets the same bits at any M.
QuantActs quantize_acts8_as16(const LinearArgs& a, ActBuffers& buf) {
  QuantActs qa = quantize_acts(a, buf);
  qa.kp2 = (a.K + 1) / 2 * 2;
  buf.q16.resize(static_cast<size_t>(a.M * qa.kp2));
  parallel_for(0, a.M, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, a.K)), [&](int64_t r0, int64_t r1) {
    for (int64_t m = r0; m < r1; ++m) {
      const int8_t* q = qa.q + m * qa.kp;  // kp >= kp2: the pad column is zero there too
      int16_t* dst = buf.q16.data() + m * qa.kp2;
      for (int64_t k = 0; k < qa.kp2; ++k) dst[k] = q[k];
    }
  });
  qa.q16 = buf.q16.data();
  qa.a8 = true;
  return qa;
}

// int8 weights as int16 pairs for the int16 GEMM (layout in gemm_int16_impl.h), one pass over W
// shared by every task.
const int16_t* gemm_pack_int16(const LinearArgs& a) {
  const int64_t groups = (a.N + kGemmIntNr - 1) / kGemmIntNr, npad = groups * kGemmIntNr;
  int16_t* buf = thread_pack_buffer<int16_t>(npad * ((a.K + 1) / 2 * 2));
  const int8_t* w = static_cast<const int8_t*>(a.w);
  parallel_for(0, groups, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, a.K * kGemmIntNr)),
               [&](int64_t g0, int64_t g1) {
                 for (int64_t g = g0; g < g1; ++g)
                   for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
                     const int64_t kc = std::min(kGemmKc, a.K - k0), pc = (kc + 1) / 2;
                     int16_t* panel = buf + k0 * npad + g * kGemmIntNr * 2 * pc;  // [pc][kGemmIntNr][2]
                     std::fill(panel, panel + pc * kGemmIntNr * 2, int16_t{0});   // pads past N and K
                     for (int64_t j = 0; j < kGemmIntNr && g * kGemmIntNr + j < a.N; ++j) {
                       const int8_t* row = w + (g * kGemmIntNr + j) * a.K + k0;
                       int16_t* dst = panel + 2 * j;
                       for (int64_t k = 0; k + 1 < kc; k += 2, dst += 2 * kGemmIntNr) {
                         dst[0] = row[k];
                         dst[1] = row[k + 1];
                       }
                       if (kc % 2) dst[0] = row[kc - 1];  // its pair partner stays 0
                     }
                   }
               });
  return buf;
}

// Weight row n, values [k0, k0 + kc), dequantized to float32 exactly as the integer kernels
// interpret them (the float path multiplies with these values and float32 activations).
template <WKind KIND>
void decode_row(const LinearArgs& a, int64_t n, int64_t k0, int64_t kc, float* out) {
  const char* row = static_cast<const char*>(a.w) + n * linear_row_bytes(KIND, a.K);
  if constexpr (KIND == WKind::kF32 || KIND == WKind::kF16 || KIND == WKind::kBF16) {
    for (int64_t k = 0; k < kc; ++k) out[k] = scalar_weight<KIND>(row, k0 + k);
  } else if constexpr (KIND == WKind::kFp8) {
    static const std::array<float, 256> lut = [] {  // fp8_e4m3_decode goes through ldexp: table it
      std::array<float, 256> t{};
      for (int b = 0; b < 256; ++b) t[b] = fp8_e4m3_decode(static_cast<uint8_t>(b));
      return t;
    }();
    const uint8_t* q = reinterpret_cast<const uint8_t*>(row);
    const float s = a.wscale[n];
    for (int64_t k = 0; k < kc; ++k) out[k] = lut[q[k0 + k]] * s;
  } else if constexpr (KIND == WKind::kInt8) {
    const int8_t* q = reinterpret_cast<const int8_t*>(row);
    for (int64_t k = 0; k < kc; ++k) out[k] = static_cast<float>(q[k0 + k]) * a.wscale[n];
  } else {  // blocks of 32 values (k0 and kc are multiples of 32 for these kinds)
    constexpr int64_t kBlock = KIND == WKind::kQ8_0 ? 34 : KIND == WKind::kQ4_0 ? 18 : KIND == WKind::kQ4_1 ? 20 : 16;
    for (int64_t b = k0 / 32; b < (k0 + kc) / 32; ++b) {
      const char* blk = row + b * kBlock;
      float* o = out + (b * 32 - k0);
      if constexpr (KIND == WKind::kQ8_0) {
        const float d = half_to_float(load_u16(blk));
        const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
        for (int i = 0; i < 32; ++i) o[i] = d * static_cast<float>(q[i]);
      } else {
        float d, m;
        const uint8_t* q;
        if constexpr (KIND == WKind::kInt4) {
          d = half_to_float(a.gscale[n * (a.K / a.group) + b * 32 / a.group]);
          m = -8.0f * d;
          q = reinterpret_cast<const uint8_t*>(blk);
        } else if constexpr (KIND == WKind::kQ4_0) {
          d = half_to_float(load_u16(blk));
          m = -8.0f * d;
          q = reinterpret_cast<const uint8_t*>(blk + 2);
        } else {
          d = half_to_float(load_u16(blk));
          m = half_to_float(load_u16(blk + 2));
          q = reinterpret_cast<const uint8_t*>(blk + 4);
        }
        // value i: low nibble of byte i; value i + 16: high nibble. d * q + m with two roundings,
        // like the numpy dequantization (and no libm fma call: this file is built without -mfma)
        for (int i = 0; i < 16; ++i) {
          o[i] = d * static_cast<float>(q[i] & 15) + m;
          o[i + 16] = d * static_cast<float>(q[i] >> 4) + m;
        }
      }
    }
  }
}

// Float GEMM weights, decoded to float32, in column groups of kGemmNr rows: K block b (k0 = b *
// kGemmKc, kc values) starts at k0 * npad; inside it group g is [kc][kGemmNr] at g * kGemmNr * kc.
// One pass over W, shared by every task (gemm_float_impl.h).
template <WKind KIND>
void pack_group(const LinearArgs& a, int64_t g, int64_t npad, float* dst) {
  float rowbuf[kGemmNr][kGemmKc];
  for (int64_t k0 = 0; k0 < a.K; k0 += kGemmKc) {
    const int64_t kc = std::min(kGemmKc, a.K - k0);
    float* panel = dst + k0 * npad + g * kGemmNr * kc;
    int64_t live = 0;
    for (int64_t j = 0; j < kGemmNr && g * kGemmNr + j < a.N; ++j, ++live)
      decode_row<KIND>(a, g * kGemmNr + j, k0, kc, rowbuf[j]);
    // k outer, the 16 rows inner: the packed block is written sequentially
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t j = 0; j < kGemmNr; ++j) panel[k * kGemmNr + j] = j < live ? rowbuf[j][k] : 0.0f;
  }
}

// The packed copy lives in a per-calling-thread buffer that only grows (thread_pack_buffer):
// it holds the largest float-GEMM weight this thread has run, decoded to float32.
float* gemm_pack_weights(const LinearArgs& a) {
  const int64_t groups = (a.N + kGemmNr - 1) / kGemmNr, npad = groups * kGemmNr;
  float* buf = thread_pack_buffer<float>(npad * a.K);
  parallel_for(0, groups, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, a.K * kGemmNr)),
               [&](int64_t g0, int64_t g1) {
                 for (int64_t g = g0; g < g1; ++g) {
                   switch (a.kind) {
                     case WKind::kF32: pack_group<WKind::kF32>(a, g, npad, buf); break;
                     case WKind::kF16: pack_group<WKind::kF16>(a, g, npad, buf); break;
                     case WKind::kBF16: pack_group<WKind::kBF16>(a, g, npad, buf); break;
                     case WKind::kFp8: pack_group<WKind::kFp8>(a, g, npad, buf); break;
                     case WKind::kInt8: pack_group<WKind::kInt8>(a, g, npad, buf); break;
                     case WKind::kInt4: pack_group<WKind::kInt4>(a, g, npad, buf); break;
                     case WKind::kQ8_0: pack_group<WKind::kQ8_0>(a, g, npad, buf); break;
                     case WKind::kQ4_0: pack_group<WKind::kQ4_0>(a, g, npad, buf); break;
                     case WKind::kQ4_1: pack_group<WKind::kQ4_1>(a, g, npad, buf); break;
                   }
                 }
               });
  return buf;
}

// The int8 GEMM runs on AMX tiles (gemm_int16_amx.cpp) at the avx512 level where AMX-INT8 is usable.
bool amx_int8_gemm(int64_t K) { return K <= 65536 && isa_level() == IsaLevel::kAvx512 && amx_int8_usable(); }

constexpr int64_t kPanelBytes = 48 << 10;  // weight rows per task: stays in L2 while M rows pass
constexpr int64_t kRowBlock = 128;         // activation rows per task (GEMM)
constexpr int64_t kInlineMacs = 1 << 19;   // smaller calls run on the caller only
constexpr int64_t kGemmPanel = 128;        // float GEMM: weight rows per task (L2-resident once packed)
constexpr int64_t kGemmRowBlock = 192;     // float GEMM: activation rows per task (32 tiles of 6)
}  // namespace

int int8_activation_bits(int64_t M, bool high) {
  return M < kGemmMinRowsQuant || high ? 8 : 16;
}

int64_t linear_row_bytes(WKind kind, int64_t K) {
  switch (kind) {
    case WKind::kF32: return 4 * K;
    case WKind::kF16:
    case WKind::kBF16: return 2 * K;
    case WKind::kFp8:
    case WKind::kInt8: return K;
    case WKind::kInt4: return K / 2;
    case WKind::kQ8_0: return K / 32 * 34;
    case WKind::kQ4_0: return K / 32 * 18;
    case WKind::kQ4_1: return K / 32 * 20;
  }
  return 0;
}

void linear_tile_scalar(const LinearArgs& a, const QuantActs& qa, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  linear_tile_dispatch<QScalar>(a, qa, m0, m1, n0, n1);
}

void quant_rows8_scalar(const float* x, int64_t K, int64_t kp, bool per_row, int64_t m0, int64_t m1, int8_t* q,
                        float* d, float* ds) {
  quant_rows8<QScalar>(x, K, kp, per_row, m0, m1, q, d, ds);
}

void quant_rows16_scalar(const float* x, int64_t K, int64_t kp2, int64_t m0, int64_t m1, int16_t* q, float* d) {
  quant_rows16<QScalar>(x, K, kp2, m0, m1, q, d);
}

void linear_forward(const LinearArgs& a) {
  IC_CHECK_VALUE(a.M >= 0 && a.N >= 0 && a.K >= 0, "x/w: negative dimension");
  const bool blocks = a.kind == WKind::kQ8_0 || a.kind == WKind::kQ4_0 || a.kind == WKind::kQ4_1;
  IC_CHECK_VALUE(!blocks || a.K % 32 == 0, "w: K must be a multiple of 32 for ggml block kinds");
  if (a.kind == WKind::kInt4)
    IC_CHECK_VALUE((a.group == 32 || a.group == 64 || a.group == 128) && a.K % a.group == 0,
                   "w: int4 needs group 32/64/128 dividing K");
  if (a.M == 0 || a.N == 0) return;
  IC_CHECK_VALUE(a.x != nullptr && a.w != nullptr && a.out != nullptr, "x/w/out: null data pointer");
  IC_CHECK_VALUE(a.act_scale == nullptr || a.kind == WKind::kInt8, "act_scale: only for int8 weights");
  if (a.K == 0) {  // empty sum: bias only
    for (int64_t m = 0; m < a.M; ++m)
      for (int64_t n = 0; n < a.N; ++n) a.out[m * a.N + n] = a.bias ? a.bias[n] : 0.0f;
    if (a.gelu) gelu_rows_f32(a.out, a.N, a.M, a.N);
    return;
  }
  ActBuffers buf;
  const bool float_gemm = uses_float_gemm(a.kind, a.M), int16_gemm = uses_int16_gemm(a.kind, a.M);
  // AMX machines run the int16 GEMM on int8 tiles (same bits, gemm_int16_amx.cpp), which
  // quantize x themselves; set_isa below avx512 turns that off with the rest of AVX-512. (The
  // tiles' int32 hi/lo sums are exact up to K = 65536.) With precision "high" the tiles take
  // 8-bit codes instead (W8A8, one pass).
  const bool amx = int16_gemm && amx_int8_gemm(a.K);
  QuantActs qa = amx                   ? QuantActs{}
                 : int16_gemm && a.high ? quantize_acts8_as16(a, buf)
                 : int16_gemm           ? quantize_acts16(a, buf)
                 : quantized_acts(a.kind) && !float_gemm ? quantize_acts(a, buf) : QuantActs{};
  // precision "high": float weights on AMX-BF16 tiles as bf16 products (gemm_bf16x3_amx.cpp)
  bool bf16x3 = a.high && float_gemm && isa_level() == IsaLevel::kAvx512 && amx_bf16_usable();
  Bf16x3Operands bf16_ops;
  if (bf16x3) {
    bf16_ops = bf16x3_prepare(a);
    qa.bf16x3 = &bf16_ops;
    bf16x3 = bf16_ops.ok;
  }
  if (float_gemm && !bf16x3) {
    qa.wpack = gemm_pack_weights(a);
  }
  AmxOperands amx_ops;
  if (amx) {
    amx_ops = amx_prepare(a);
    qa.amx = &amx_ops;
    qa.d = amx_ops.d;
  } else if (int16_gemm) {
    qa.wpack16 = gemm_pack_int16(a);
  }
  const LinearTileFn fn = amx ? linear_tile_amx : bf16x3 ? linear_tile_bf16x3 : pick(isa_level());
  const int64_t rb = std::max<int64_t>(1, linear_row_bytes(a.kind, a.K));
  int64_t panel = std::max<int64_t>(1, kPanelBytes / rb);
  // Enough tasks to balance the pool when N is small (GEMV on narrow layers).
  panel = std::min(panel, std::max<int64_t>(1, a.N / (4 * num_threads())));
  if (uses_r8_gemm(a.kind, a.M)) panel = (panel + 7) / 8 * 8;  // whole 8-row groups (gemm_blocks_r8_impl.h)
  int64_t row_block = kRowBlock;
  if (float_gemm || int16_gemm) {
    // the packed GEMMs want whole register tiles: 128 weight rows (8 float / 4 int16 column
    // groups) x 192 rows of x; narrower panels (multiples of the group) only when there are too
    // few tasks for the pool
    const int64_t group = int16_gemm || bf16x3 ? kGemmIntNr : kGemmNr;  // bf16x3 also takes 32-column tiles
    row_block = kGemmRowBlock;
    panel = kGemmPanel;
    const int64_t m_tasks = (a.M + row_block - 1) / row_block;
    while (panel > group && m_tasks * ((a.N + panel - 1) / panel) < 2 * num_threads()) panel /= 2;
  }
  // Below ~0.5M multiply-adds (a few microseconds) waking the pool costs more than it saves.
  // GELU (activation="gelu"): the AMX kernels apply it in their epilogues, every other kernel
  // leaves it to gelu_rows_f32 on the task's output block (still in L2)
  const bool gelu_after = a.gelu && !amx && !bf16x3;
  if (a.M * a.N * a.K < kInlineMacs) {
    fn(a, qa, 0, a.M, 0, a.N);
    if (gelu_after) gelu_rows_f32(a.out, a.N, a.M, a.N);
    return;
  }
  const int64_t n_tasks = (a.N + panel - 1) / panel;
  const int64_t m_tasks = (a.M + row_block - 1) / row_block;
  run_tasks(n_tasks * m_tasks, [&](int64_t t) {
    const int64_t nt = t % n_tasks, mt = t / n_tasks;
    const int64_t n0 = nt * panel, n1 = std::min(a.N, n0 + panel);
    const int64_t m0 = mt * row_block, m1 = std::min(a.M, m0 + row_block);
    fn(a, qa, m0, m1, n0, n1);
    if (gelu_after) gelu_rows_f32(a.out + m0 * a.N + n0, a.N, m1 - m0, n1 - n0);
  });
}

}  // namespace infercore
