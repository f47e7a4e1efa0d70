// y[M,N] = x[M,K] @ W[N,K]^T (+ bias) for float and quantized weights (infercore.quant layouts).
//
// Weight layouts (row n of W is contiguous, rows are `row_bytes(kind, K)` apart):
//   kF32/kF16/kBF16: K values.   kFp8: K E4M3 bytes, per-row float32 scale.
//   kInt8: K int8 in [-127,127], per-row float32 scale; activations are quantized per token
//          (W8A8): d = absmax/127 (float32), q = rint(x/d) (ties to even).
//   kInt4: K/2 bytes, per 32 values 16 bytes (value i: low nibble of byte i, value i+16: high
//          nibble), stored q+8 with q in [-8,7]; float16 scale per group of `group` values.
//          Runs W4A8 like q4_0: activations quantized per block of 32 (below).
//   kQ8_0/kQ4_0/kQ4_1: ggml blocks of 32 (34/18/20 bytes). Activations are quantized to
//          blocks of 32 like ggml's q8_0/q8_1 (but with a float32 block scale, not float16).
// Activations quantized to int8 make a row with a NaN/inf give a NaN output row.
#pragma once
#include <cstdint>

namespace infercore {

enum class WKind : int { kF32 = 0, kF16, kBF16, kFp8, kInt8, kInt4, kQ8_0, kQ4_0, kQ4_1 };

struct LinearArgs {
  const float* x = nullptr;        // [M, K] float32, C-contiguous
  const void* w = nullptr;         // [N, row_bytes]
  const float* wscale = nullptr;   // [N] (kFp8, kInt8)
  const uint16_t* gscale = nullptr;  // [N, K/group] float16 (kInt4)
  const float* bias = nullptr;     // [N] or null
  float* out = nullptr;            // [M, N]
  int64_t M = 0, N = 0, K = 0;
  int64_t group = 0;               // kInt4 group size (32, 64 or 128)
  WKind kind = WKind::kF32;
  // matmul precision "high" (ops.linear(precision="high")): where the CPU has AMX, float weights
  // in the GEMM (float32/16 from kGemmMinRows rows: three bf16 products per multiply-add; bf16
  // and fp8 weights, exact in bf16, two; fp8 from kGemmMinRowsQuant rows) run on AMX-BF16 tiles
  // (gemm_bf16x3_amx.cpp: ~16-bit activations, float32 sums); on every CPU, int8 weights keep
  // 8-bit per-token activations (W8A8, as below kGemmMinRowsQuant rows) at every size, with the
  // same bits per row whatever M: on AMX-INT8 tiles one pass instead of W8A16's two
  // (gemm_int16_amx.cpp), elsewhere the int16 GEMM on the widened codes (gemm_int16_impl.h)
  bool high = false;
  // exact (erf) GELU on every output after the bias: each task's output block, still in L2
  // (gelu_rows_f32), same bits as a separate ops.gelu pass
  bool gelu = false;
  // int8 weights only: the activations quantized are x * act_scale ([K], per input channel):
  // SmoothQuant's 1/s folded into the quantizer, instead of a separate pass over x
  const float* act_scale = nullptr;
};

// Row m of the activations the quantizers read: x's row, or x * act_scale into tmp (K floats).
inline const float* act_row(const LinearArgs& a, int64_t m, float* tmp) {
  const float* x = a.x + m * a.K;
  if (a.act_scale == nullptr) return x;
  for (int64_t k = 0; k < a.K; ++k) tmp[k] = x[k] * a.act_scale[k];
  return tmp;
}

struct AmxOperands;
struct Bf16x3Operands;

// Activations after per-token / per-block quantization (built once per call, shared by threads).
struct QuantActs {
  const int8_t* q = nullptr;   // [M, Kp], Kp = K rounded up to 32, zero padded
  const float* d = nullptr;    // kInt8: [M] row scale; block kinds: [M, K/32]
  const float* ds = nullptr;   // 4-bit kinds: [M, K/32] d * sum(q) of the block
  int64_t kp = 0;
  const float* wpack = nullptr;  // float GEMM: weights packed by gemm_pack_weights (linear.cpp)
  // int8 GEMM (gemm_int16_impl.h): int16 activation codes [M, kp2] with d[m] = row scale, and the
  // weights packed as int16 pairs by gemm_pack_int16 (linear.cpp)
  const int16_t* q16 = nullptr;
  int64_t kp2 = 0;
  const int16_t* wpack16 = nullptr;
  // precision "high": q16 holds quantize_acts' int8 codes widened (W8A8) and the epilogue rounds
  // as the dot-product tiles do (bias + w8a8_product)
  bool a8 = false;
  const AmxOperands* amx = nullptr;  // the same GEMM on AMX tiles (gemm_int16_amx.cpp)
  const Bf16x3Operands* bf16x3 = nullptr;  // float weights on AMX-BF16 tiles (gemm_bf16x3_amx.cpp)
};

// The int16 GEMM's operands for AMX int8 tiles (gemm_int16_amx.cpp): W packed as 1 KiB B tiles
// (per 16 weight rows x 64 K values), and each int16 code split as 256 * hi + lo.
struct AmxOperands {
  const int8_t* w = nullptr;
  const int8_t* hi = nullptr;   // mpad x kp64 codes as [mpad / 16][kp64 / 64] tiles of 16 x 64
  const uint8_t* lo = nullptr;  // the same layout
  const int8_t* q8 = nullptr;   // a8: int8 codes (quant_rows8's) in hi's tile layout, no hi/lo
  const float* d = nullptr;     // [mpad] row scales (quant_rows16's, or quant_rows8's with a8)
  int64_t kp64 = 0, mpad = 0;
  bool a8 = false;
};
bool amx_int8_usable();  // AMX-INT8 present, tile state granted by the OS, INFERCORE_AMX != "0"
// Activation bits of an int8-weight call of M rows: 8 below kGemmMinRowsQuant rows and, with
// precision "high", at every size (W8A8 on AMX tiles, else the int16 GEMM on the widened 8-bit
// codes); else 16 (W8A16). The same conditions as linear_forward's choice.
int int8_activation_bits(int64_t M, bool high);
AmxOperands amx_prepare(const LinearArgs& a);  // quantizes x and packs W (pool-parallel, per call)

// The float GEMM's operands as bf16 hi/lo tiles (gemm_bf16x3_amx.cpp): W as B tiles [16 K
// pairs][16 weight rows][2] per 16 rows x 32 K values, x as A tiles [16 rows][32] per 16 rows x
// 32 K values, each in [group][step] order; the bias padded to npad.
struct Bf16x3Operands {
  const uint16_t* whi = nullptr;
  const uint16_t* wlo = nullptr;
  const uint16_t* ahi = nullptr;
  const uint16_t* alo = nullptr;
  const float* bias = nullptr;
  const float* wscale = nullptr;  // fp8: per-row scales, applied in the epilogue
  int64_t steps = 0, mpad = 0, npad = 0;
  bool exact_w = false;  // bf16 / fp8 weights are exact in bf16: no wlo, two products (bf16x2)
  bool ok = true;  // false: an inf/NaN in x or W, or a value beyond bf16's range: run the float32 GEMM
};
bool amx_bf16_usable();  // AMX-BF16 and AVX512-BF16 present, tile state granted, INFERCORE_AMX != "0"
Bf16x3Operands bf16x3_prepare(const LinearArgs& a);  // splits x and W into bf16 hi/lo tiles (pool-parallel)

int64_t linear_row_bytes(WKind kind, int64_t K);

// Which kernel a call takes, by weight kind and activation rows M:
//  - int4, q4_0, q4_1 from kR8MinRows rows and q8_0 from kR8MinRowsQ8 (batched decode and
//    prefill): the 8-row interleaved block GEMM of gemm_blocks_r8_impl.h on int8 activation
//    codes per block of 32 (W4A8 / W8A8 as in decode, and as ggml's q8_0/q8_1 activations): one
//    maddubs per 32 MACs (q8_0: plus a madd), no per-block horizontal sums. AVX2, 2 cores: ~1.8x
//    the dot tiles at 16 rows, ~1.9x (4-bit) / ~1.2-1.7x (q8_0) the float GEMM at 512 rows.
//  - int8 weights from kGemmMinRowsQuant rows: the integer GEMM of gemm_int16_impl.h (int16
//    activation codes per row, W8A16, vpmaddwd), ~1.5x the float kernel's multiply-adds per cycle;
//    on AMX machines (avx512 level) the same sums on int8 tiles (gemm_int16_amx.cpp), same bits.
//    Precision "high": the 8-bit codes of the dot tiles instead (W8A8, the same bits as below).
//  - float32/16/bf16 from kGemmMinRows rows, fp8 from kGemmMinRowsQuant rows: weights decoded
//    into the float GEMM's packed panels (gemm_float_impl.h) and multiplied with float32
//    activations; with precision "high" on AMX machines, bf16 products on AMX-BF16 tiles
//    (gemm_bf16x3_amx.cpp), and int8 W8A8 on the int8 tiles.
// Fewer rows (decode) take the dot-product tiles, which read the weights in their compact
// format once and need no packing. Every path of a kind gives a row the same bits whatever the
// other rows, the tile split or the thread count (the r8 GEMM repeats the tiles' arithmetic).
constexpr int64_t kGemmMinRows = 16;
constexpr int64_t kGemmMinRowsQuant = 64;
constexpr int64_t kR8MinRows = 4;    // int4/q4_0/q4_1: the r8 GEMM from here
constexpr int64_t kR8MinRowsQ8 = 8;  // q8_0 (at 4 rows the r8 GEMM and the tiles measure alike)
constexpr int64_t kGemmNr = 16;     // weight rows per packed column group (float GEMM)
constexpr int64_t kGemmIntNr = 32;  // weight rows per packed column group (int16 GEMM)
constexpr int64_t kGemmKc = 256;    // K values per packed block
// Kinds with a float scale per block of 32 values, computed on per-block int8 activations.
constexpr bool is_block_kind(WKind k) {
  return k == WKind::kInt4 || k == WKind::kQ8_0 || k == WKind::kQ4_0 || k == WKind::kQ4_1;
}
inline bool uses_r8_gemm(WKind k, int64_t M) {
  return is_block_kind(k) && M >= (k == WKind::kQ8_0 ? kR8MinRowsQ8 : kR8MinRows);
}
inline bool uses_int16_gemm(WKind k, int64_t M) { return k == WKind::kInt8 && M >= kGemmMinRowsQuant; }
inline bool uses_float_gemm(WKind k, int64_t M) {
  const bool float_kind = k == WKind::kF32 || k == WKind::kF16 || k == WKind::kBF16;
  return k != WKind::kInt8 && !uses_r8_gemm(k, M) && M >= (float_kind ? kGemmMinRows : kGemmMinRowsQuant);
}

// Computes out rows [m0, m1) for weight rows [n0, n1). Per-ISA (linear*.cpp).
using LinearTileFn = void (*)(const LinearArgs&, const QuantActs&, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
void linear_tile_scalar(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);
void linear_tile_avx2(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);
void linear_tile_avx512(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);
void linear_tile_avx512vnni(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);
void linear_tile_amx(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);  // int16 GEMM only
void linear_tile_bf16x3(const LinearArgs&, const QuantActs&, int64_t, int64_t, int64_t, int64_t);  // float GEMM, "high"

// Rows [m0, m1) of x [M, K] to int16 codes q [M, kp2] and scales d [M] (gemm_int16_impl.h).
using QuantRows16Fn = void (*)(const float* x, int64_t K, int64_t kp2, int64_t m0, int64_t m1, int16_t* q, float* d);
void quant_rows16_scalar(const float*, int64_t, int64_t, int64_t, int64_t, int16_t*, float*);
void quant_rows16_avx2(const float*, int64_t, int64_t, int64_t, int64_t, int16_t*, float*);
void quant_rows16_avx512(const float*, int64_t, int64_t, int64_t, int64_t, int16_t*, float*);

// Rows [m0, m1) of x [M, K] to int8 codes q [M, kp], scales d and block offsets ds
// (quant_rows8_impl.h): per_row for int8 weights, else per block of 32; ds may be null.
using QuantRows8Fn = void (*)(const float* x, int64_t K, int64_t kp, bool per_row, int64_t m0, int64_t m1, int8_t* q,
                              float* d, float* ds);
void quant_rows8_scalar(const float*, int64_t, int64_t, bool, int64_t, int64_t, int8_t*, float*, float*);
void quant_rows8_avx2(const float*, int64_t, int64_t, bool, int64_t, int64_t, int8_t*, float*, float*);
void quant_rows8_avx512(const float*, int64_t, int64_t, bool, int64_t, int64_t, int8_t*, float*, float*);

// An int8-weight W8A8 product float(S) * (dx * s_w), rounded on its own on every ISA; the
// kernels add the bias to it in a separate rounding (the dot tiles in tile_kind, the int16 GEMM
// through a memory array, the AMX epilogue with a rounding-mode multiply), so a row's bits
// never depend on the kernel its batch size picked. The volatile keeps the compiler from
// contracting the multiply and the add into one FMA (-mfma builds contract by default).
inline float w8a8_product(int64_t sum, float dx, float sw) {
  volatile float p = static_cast<float>(sum) * (dx * sw);
  return p;
}

// Validates, quantizes activations where the kind needs it, and splits the work over the
// thread pool. Call without the GIL.
void linear_forward(const LinearArgs& args);

}  // namespace infercore
