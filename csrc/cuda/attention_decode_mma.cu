// Paged attention decode on tensor cores (mma.sync m16n8k16, float16 in, float32 accumulate) for
// float16, fp8 (E4M3) and int8 caches with head_dim 64 or 128; attention_decode.cu's CUDA-core
// kernel takes the other caches and head sizes, and this one's results match it within float32
// rounding. One block per (sequence, kv head x head chunk, split), 4 warps, each warp its own
// tiles of 16 keys (32 opt-in for 8-bit caches) with its own online softmax, merged at the end (same workspace and merge kernel).
//
// Why: the CUDA-core kernel finishes each q.k with shuffles and spends ~70 warp instructions per
// key at GQA group 4 (head_dim 128); it reached 47-55% of HBM on an H200 and fp8/int8 ran no
// faster than float16 (issue-bound). Here a warp computes S = Q K^T for 16 keys and all heads of
// the group with D/16 x 2 mma and O += P V with D/8 x 2 mma: ~10 instructions per key.
//
// Layout per warp and tile (groupID g = lane / 4, t = lane % 4):
//  - Q is the A operand (rows = the group's query heads, at most 8, rows 8-15 zero) and stays in
//    registers. Within a k-step the 16 reduction indices may map to any 16 head-dim positions as
//    long as Q and K agree, so thread t's four (2t, 2t+1, 2t+8, 2t+9) are four consecutive
//    elements of one 16-byte shared-memory chunk of the K row: the B operand is read with plain
//    16-byte loads, no ldmatrix, and 8-bit K is widened to float16 pairs in registers.
//  - S column n of n-tile j is key (n >> 1) + 4 (n & 1) + 8 j, so the C fragment of thread t
//    holds keys t, t + 4, t + 8, t + 12: exactly the keys its A fragment of P needs for O += P V,
//    and the V operand (keys t, t+4 | t+8, t+12 at one head-dim position) is built from four
//    V rows with byte permutes. O column n of n-tile e is head-dim position sigma(e, n).
//  - float16 operands are exact for the cache values (fp8 via the /256 exponent trick, int8 via
//    the 1024 magic number); Q and P are split into float16 hi + lo (two mma each), so the sums
//    are float32-accurate (~2^-22 relative) like the CUDA-core kernel's: Q is scaled per row by a
//    power of two into [0.5, 1) first (any query or scale magnitude stays in float16 range), and
//    P is in [0, 1] (int8's per-token v scale rides on P divided by the running max of the
//    scales, which rescales the accumulator like the softmax max does).
//  - K/V tiles are cp.async-copied into a per-warp ring of shared memory (2-8 stages, ~27 KB per
//    warp), each copy instruction moving whole rows (whole 128-byte lines). Row strides of
//    rowbytes + 16 (K) and + 32 (V) keep the 16-byte reads free of bank conflicts.
//
// Napkin math (7B-like: Hkv 8, G 4, D 128, float16, S 16, ctx 4096): 268 MB of K/V per call ->
// 56 us at 4.8 TB/s. Per key and warp: 512 B, ~4 mma of S + 4 of PV (hi/lo) per 16 keys per
// k-slice, ~10 instructions per key all told against ~70 on the CUDA cores; tensor work ~6
// clk/key/SM at mma.sync rates against 28 clk/key/SM of HBM time: bandwidth bound. int8/fp8:
// half the bytes (14 clk/key/SM), still above the tensor and issue time.
//
// Measured (H200, bench_attention --gpu-only, us per call and % of the 4.2 TB/s copy rate; the
// CUDA-core kernel in brackets, same run): 7B float16 S 16 ctx 4096 102.8 us 63% (134.5, 48%),
// S 64 306 us 85% (462, 56%); fp8 S 64 272 us (389), int8 S 64 300 us (459); SmolLM2 (D 64, G 3)
// S 16 float16 37.4 us (34.6), fp8 34.3 (41.4), int8 37.1 (43.7). ncu (7B, S 16): 2 blocks = 8
// warps per SM (registers and ring), 57% of DRAM bandwidth for float16 but 29% for fp8 in the
// same time: each warp has one or two tiles in flight and a tile's compute is a chain of
// dependent steps, so 8-bit tiles (half the bytes) gain little. Hence the 32-key tiles for 8-bit
// caches (TK = 32, INFERCORE_CUDA_ATTN_MMA_TILE=32: twice the bytes per chain; compiled, not yet
// run on a GPU, so opt-in until tests/gpu and the bench's "tile32" rows have run) and the bench's
// "half-splits" rows (SmolLM2 S 16 gives each warp ~3 tiles: the prologue and merge dominate).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include "attention_common.cuh"
#include "attention_decode.h"

namespace infercore {
namespace cuda {
namespace {
using namespace attn;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
// Ring per warp: 3 float16 tiles of 128-wide rows (2 in flight), 5-8 of the smaller ones; two
// blocks (8 warps) fit an H100/H200 SM's 227 KB. Devices with less shared memory per block use the
// CUDA-core kernel (decode_mma_eligible).
constexpr int kWarpRingBytes = 27 * 1024;

// c0/c1 (row g, columns 2t, 2t+1) += A (rows g: a_lo = columns 2t..2t+1, a_hi = 2t+8..2t+9; rows
// g+8 zero) x B (b0 = rows 2t..2t+1, b1 = rows 2t+8..2t+9 of column g). Rows 8-15 of C are not
// kept: they go to scratch outputs from zero inputs, so no mma waits on another through them.
__device__ __forceinline__ void mma_row8(float& c0, float& c1, uint32_t a_lo, uint32_t a_hi, uint32_t b0,
                                         uint32_t b1) {
#pragma nv_diag_suppress 550  // d2, d3: set, never read
  float d2, d3;  // rows 8-15 of C
#pragma nv_diag_default 550
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%10,%10};\n"
      : "+f"(c0), "+f"(c1), "=f"(d2), "=f"(d3)
      : "r"(a_lo), "r"(0u), "r"(a_hi), "r"(0u), "r"(b0), "r"(b1), "f"(0.f));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
// x = hi + lo with both halves float16: hi carries 11 bits, lo the next 11.
__device__ __forceinline__ void split_half2(float x0, float x1, uint32_t& hi, uint32_t& lo) {
  const __half2 h = __floats2half2_rn(x0, x1);
  const float2 back = __half22float2(h);
  hi = *reinterpret_cast<const uint32_t*>(&h);
  lo = pack_half2(x0 - back.x, x1 - back.y);
}

// float16 pair (low = byte QA of a, high = byte QB of b) of an 8-bit cache: int8 exact via
// 1024 + (v ^ 0x80) - 1152; fp8 E4M3 as value / 256 (sign | eeeemmm moved under a binary16
// exponent whose bias is 8 larger, subnormals exact), as attention_common.cuh's dequant.
template <int DT, int QA, int QB>
__device__ __forceinline__ uint32_t pair8(uint32_t a, uint32_t b) {
  constexpr uint32_t sel = QA | (QA << 4) | ((4 + QB) << 8) | ((4 + QB) << 12);
  const uint32_t x = __byte_perm(a, b, sel);  // bytes: a_QA a_QA b_QB b_QB
  if constexpr (DT == kInt8) {
    const uint32_t h = (x & 0x00FF00FFu) ^ 0x64806480u;
    const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&h),
                              __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480)));
    return *reinterpret_cast<const uint32_t*>(&r);
  } else {
    return (x & 0x80008000u) | ((x >> 1) & 0x3F803F80u);
  }
}
// float16 pair (low = half QA of a, high = half QB of b) of a float16 cache.
template <int QA, int QB>
__device__ __forceinline__ uint32_t pair16(uint32_t a, uint32_t b) {
  return __byte_perm(a, b, (QA ? 0x32u : 0x10u) | ((QB ? 0x76u : 0x54u) << 8));
}

template <int DT, int D, int TK>  // TK: keys per tile (16 or 32)
struct MmaCfg {
  static constexpr int kEsz = DT == kF16 ? 2 : 1;
  static constexpr int kRow = D * kEsz;     // bytes of one cache row (one key, one kv head)
  static constexpr int kKS = kRow + 16;     // K row stride in the ring
  static constexpr int kVS = kRow + 32;     // V row stride in the ring
  static constexpr int kChunks = kRow / 64;  // 16-byte K chunks per thread and row (t picks its 16 B of each 64)
  static constexpr int kStepsPerChunk = 4 / kEsz;  // k-steps (16 reduction indices) per chunk
  static constexpr int kSteps = D / 16;
  static constexpr int kNT = D / 8;         // n-tiles of O
  static constexpr int kVBytes = kNT * kEsz;  // bytes of each V row a thread reads (8, 16 or 32)
  static constexpr int kScaleBytes = DT == kInt8 ? 2 * TK * 4 : 0;
  static constexpr int kStage = TK * (kKS + kVS) + kScaleBytes;
  static constexpr int kStages = kWarpRingBytes / kStage > 8 ? 8 : (kWarpRingBytes / kStage < 2 ? 2 : kWarpRingBytes / kStage);
  static constexpr int kWarpBytes = kStages * kStage;
  static constexpr int kEpilogue = (kWarps * kMmaMaxGroup * D + kWarps * kMmaMaxGroup * 2) * 4;
  static constexpr int kSmem = (kWarps * kWarpBytes > kEpilogue ? kWarps * kWarpBytes : kEpilogue) + kWarps * 8 * 4;
  static_assert(kRow % 64 == 0, "rows of 64, 128 or 256 bytes");
  static_assert(kVBytes == 8 || kVBytes % 16 == 0, "V reads of 8 or 16k bytes");
  static_assert(TK == 16 || TK == 32, "tiles of 16 or 32 keys");
};

// Head-dim position of O n-tile e, column n (the V element thread g = n reads as its e-th).
template <int DT, int D>
__device__ __forceinline__ int sigma(int e, int n) {
  using C = MmaCfg<DT, D, 16>;
  if constexpr (C::kVBytes == 8) {
    return n * C::kNT + e;
  } else {
    constexpr int per = 16 / C::kEsz;  // elements per 16-byte part
    return ((e / per) * 128 + n * 16) / C::kEsz + e % per;
  }
}

template <int DT, int D, int TK>
__global__ void __launch_bounds__(kThreads, 2) decode_mma_kernel(const DecodeParams p) {
  using C = MmaCfg<DT, D, TK>;
  constexpr int ST = C::kStages;
  constexpr int NJ = TK / 8;    // S n-tiles per tile
  constexpr int NH = TK / 16;   // 16-key halves (k-steps of O += P V)
  extern __shared__ __align__(16) char smem[];

  const int s = blockIdx.x;
  const int h = blockIdx.y / p.nchunks;
  const int g0 = (blockIdx.y % p.nchunks) * p.gc;
  const int ng = min(p.gc, p.G - g0);
  const int split = blockIdx.z;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t = lane & 3;

  int len = p.lens[s];
  const int64_t cap = p.max_blocks * p.bs;
  if (len < 1 || len > cap) {
    if (tid == 0 && split == 0 && blockIdx.y == 0) raise_flag(p.err, kErrSeqLen);
    len = len < 0 ? 0 : static_cast<int>(len > cap ? cap : len);
  }
  const int kb0 = p.window > 0 ? max(0, len - p.window) : 0;
  const int chunk = (len - kb0 + p.splits - 1) / p.splits;
  const int kb = min(len, kb0 + split * chunk);
  const int ke = min(len, kb + chunk);

  // Q of row g as float16 hi/lo A fragments, scaled by 2^-e into [0.5, 1); rowmul puts back
  // 2^e and qmul (scale, log2(e), k scale) on the float32 scores.
  uint32_t qh[C::kSteps][2], ql[C::kSteps][2];
  float rowmul;
  {
    float qf[C::kSteps][4];
    float amax = 0.f;
    const bool live = g < ng;
    const int64_t qrow = (static_cast<int64_t>(s) * p.Hq + h * p.G + g0 + (live ? g : 0)) * D;
#pragma unroll
    for (int st = 0; st < C::kSteps; ++st) {
      const int base = (st / C::kStepsPerChunk) * (64 / C::kEsz) + t * (16 / C::kEsz) + (st % C::kStepsPerChunk) * 4;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        qf[st][i] = live ? load_in(p.q, p.q_dtype, qrow + base + i) : 0.f;
        amax = fmaxf(amax, fabsf(qf[st][i]));
      }
    }
    amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 1));
    amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, 2));
    int e = 0;
    if (amax > 0.f && amax <= 3.4e38f) frexpf(amax, &e);
    const float down = ldexpf(1.f, -e);
    rowmul = ldexpf(p.qmul, e);
#pragma unroll
    for (int st = 0; st < C::kSteps; ++st) {
      split_half2(qf[st][0] * down, qf[st][1] * down, qh[st][0], ql[st][0]);
      split_half2(qf[st][2] * down, qf[st][3] * down, qh[st][1], ql[st][1]);
    }
  }

  float acc[C::kNT][2];
#pragma unroll
  for (int e = 0; e < C::kNT; ++e) acc[e][0] = acc[e][1] = 0.f;
  float m = -INFINITY, l = 0.f;
  float vmax = 0.f;  // int8: running max of the per-token v scales (acc is in units of it)

  char* ring = smem + warp * C::kWarpBytes;
  constexpr int kValidAt = kWarps * C::kWarpBytes > C::kEpilogue ? kWarps * C::kWarpBytes : C::kEpilogue;
  uint32_t* valid_words = reinterpret_cast<uint32_t*>(smem + kValidAt) + warp * 8;  // one word per stage
  const int32_t* btr = p.bt + static_cast<int64_t>(s) * p.max_blocks;
  const int64_t tok_stride = static_cast<int64_t>(p.Hkv) * C::kRow;
  const char* kh = p.kc + static_cast<int64_t>(h) * C::kRow;
  const char* vh = p.vc + static_cast<int64_t>(h) * C::kRow;
  const int tw0 = kb + warp * TK;
  constexpr int kStep = kWarps * TK;
  const int ntiles = tw0 < ke ? (ke - tw0 + kStep - 1) / kStep : 0;
  bool bad_block = false;

  // Copies of a tile: every lane looks up the slot of key lane % TK (-1: not attended or a bad
  // block id), then each copy instruction moves 32 / CPR whole rows, CPR consecutive lanes per
  // row, so it touches whole 128-byte lines (a first version gave each lane half a row: 32 lines
  // per instruction, 43-54% of HBM on an H200).
  constexpr int CPR = C::kRow / 16;  // 16-byte chunks per row
  constexpr int RPI = 32 / CPR;      // rows per copy instruction
  const int ch = lane % CPR, r0 = lane / CPR;
  auto issue = [&](int tile, int stage) {
    const int key = tw0 + tile * kStep + (lane & (TK - 1));
    int slot = -1;
    if (key < ke) {
      const int bi = p.bs_shift >= 0 ? key >> p.bs_shift : key / p.bs;
      const int blk = __ldg(btr + bi);
      if (blk < 0 || blk >= p.num_blocks) bad_block = true;
      else slot = blk * p.bs + (key - bi * p.bs);  // < 2^31: checked by the launcher
    }
    char* st = ring + stage * C::kStage;
#pragma unroll
    for (int j = 0; j < TK / RPI; ++j) {
      const int row = r0 + j * RPI;
      const int sl = __shfl_sync(0xFFFFFFFFu, slot, row);
      const bool ok = sl >= 0;
      const int64_t off = static_cast<int64_t>(ok ? sl : 0) * tok_stride + ch * 16;
      cp_async<16>(st + row * C::kKS + ch * 16, ok ? kh + off : p.kc, ok);
      cp_async<16>(st + TK * C::kKS + row * C::kVS + ch * 16, ok ? vh + off : p.vc, ok);
    }
    if constexpr (DT == kInt8) {  // [k scales of the TK keys, v scales]; q % TK is this lane's key
      float* sc = reinterpret_cast<float*>(st + TK * (C::kKS + C::kVS));
#pragma unroll
      for (int q = lane; q < 2 * TK; q += 32) {
        const float* src = q < TK ? p.ks : p.vs;
        cp_async<4>(sc + q, slot >= 0 ? src + static_cast<int64_t>(slot) * p.Hkv + h : src, slot >= 0);
      }
    }
    uint32_t bits = __ballot_sync(0xFFFFFFFFu, slot >= 0);  // bit k: key k attended
    if (TK == 16) bits &= 0xFFFFu;
    if (lane == 0) valid_words[stage] = bits;
  };

#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (i < ntiles) issue(i, i);
    cp_async_commit();
  }
  int rd = 0;
  for (int i = 0; i < ntiles; ++i) {
    __syncwarp();  // every lane is done with the stage the next issue overwrites
    if (i + ST - 1 < ntiles) issue(i + ST - 1, (rd + ST - 1) % ST);
    cp_async_commit();
    cp_async_wait<ST - 1>();
    __syncwarp();  // tile i landed, every lane's copies visible to the warp

    const char* kt = ring + rd * C::kStage;
    const char* vt = kt + TK * C::kKS;
    const uint32_t vw = valid_words[rd];

    // S = Q K^T: n-tile j's column g is key (g >> 1) + 4 (g & 1) + 8 j.
    // Four independent accumulators per n-tile (Q hi / lo x even / odd k-step): chains of D / 32
    // dependent mma instead of D / 8.
    float sp[4][NJ][2] = {};
    const char* kr = kt + ((g >> 1) + 4 * (g & 1)) * C::kKS + t * 16;
#pragma unroll
    for (int c = 0; c < C::kChunks; ++c) {
      uint32_t a[NJ][4];
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        const uint4 w = *reinterpret_cast<const uint4*>(kr + 8 * j * C::kKS + c * 64);
        a[j][0] = w.x;
        a[j][1] = w.y;
        a[j][2] = w.z;
        a[j][3] = w.w;
      }
#pragma unroll
      for (int wi = 0; wi < C::kStepsPerChunk; ++wi) {
        const int st = c * C::kStepsPerChunk + wi;
        float(&hi)[NJ][2] = sp[st & 1];
        float(&lo)[NJ][2] = sp[2 + (st & 1)];
        uint32_t b[NJ][2];  // [n-tile][low / high k half]
#pragma unroll
        for (int j = 0; j < NJ; ++j) {
          if constexpr (DT == kF16) {
            b[j][0] = a[j][2 * wi];
            b[j][1] = a[j][2 * wi + 1];
          } else {
            b[j][0] = pair8<DT, 0, 1>(a[j][wi], a[j][wi]);
            b[j][1] = pair8<DT, 2, 3>(a[j][wi], a[j][wi]);
          }
        }
#pragma unroll
        for (int j = 0; j < NJ; ++j) mma_row8(hi[j][0], hi[j][1], qh[st][0], qh[st][1], b[j][0], b[j][1]);
#pragma unroll
        for (int j = 0; j < NJ; ++j) mma_row8(lo[j][0], lo[j][1], ql[st][0], ql[st][1], b[j][0], b[j][1]);
      }
    }
    float sc[NJ][2];
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) sc[j][jj] = (sp[0][j][jj] + sp[1][j][jj]) + (sp[2][j][jj] + sp[3][j][jj]);

    // Online softmax over the tile: thread (g, t) holds keys t + 4 jj + 8 j of head row g.
    const float* scl = reinterpret_cast<const float*>(vt + TK * C::kVS);
    float mt = -INFINITY;
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const int key = t + 4 * jj + 8 * j;
        float x = sc[j][jj] * rowmul;
        if constexpr (DT == kInt8) x *= scl[key];
        x = (vw >> key) & 1u ? x : -INFINITY;
        sc[j][jj] = x;
        mt = fmaxf(mt, x);
      }
    mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, 1));
    mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, 2));
    const float mn = fmaxf(m, mt);
    const bool none = mn == -INFINITY;
    float factor = none ? 1.f : exp2f(m - mn);
    float sum = 0.f;
#pragma unroll
    for (int j = 0; j < NJ; ++j)
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const float pr = none ? 0.f : exp2f(sc[j][jj] - mn);
        sum += pr;
        sc[j][jj] = pr;
      }
    l = l * factor + sum;
    m = mn;
    if constexpr (DT == kInt8) {
      // P carries the token's v scale divided by the running max of the scales (P stays in [0, 1]).
      float tv = 0.f;
#pragma unroll
      for (int j = 0; j < NJ; ++j)
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) tv = fmaxf(tv, scl[TK + t + 4 * jj + 8 * j]);
      tv = fmaxf(tv, __shfl_xor_sync(0xFFFFFFFFu, tv, 1));
      tv = fmaxf(tv, __shfl_xor_sync(0xFFFFFFFFu, tv, 2));
      const float vnew = fmaxf(vmax, tv);
      if (vnew > vmax) factor *= vmax / vnew;
      vmax = vnew;
      const float inv = vnew > 0.f ? 1.f / vnew : 0.f;
#pragma unroll
      for (int j = 0; j < NJ; ++j)
#pragma unroll
        for (int jj = 0; jj < 2; ++jj) sc[j][jj] *= scl[TK + t + 4 * jj + 8 * j] * inv;
    }
    if (factor != 1.f) {
#pragma unroll
      for (int e = 0; e < C::kNT; ++e) {
        acc[e][0] *= factor;
        acc[e][1] *= factor;
      }
    }

    // O += P V, one 16-key half at a time: P columns (keys 16 kk + t, t+4) and (t+8, t+12), V rows
    // 16 kk + t + 4 r at this thread's head-dim positions sigma(e, g).
#pragma unroll
    for (int kk = 0; kk < NH; ++kk) {
      uint32_t ph0, pl0, ph1, pl1;
      split_half2(sc[2 * kk][0], sc[2 * kk][1], ph0, pl0);
      split_half2(sc[2 * kk + 1][0], sc[2 * kk + 1][1], ph1, pl1);
      constexpr int VW = C::kVBytes / 4;
      uint32_t vr[4][VW];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const char* row = vt + (16 * kk + t + 4 * r) * C::kVS;
        if constexpr (C::kVBytes == 8) {
          const uint2 x = *reinterpret_cast<const uint2*>(row + g * 8);
          vr[r][0] = x.x;
          vr[r][1] = x.y;
        } else {
#pragma unroll
          for (int part = 0; part < C::kVBytes / 16; ++part) {
            const uint4 x = *reinterpret_cast<const uint4*>(row + part * 128 + g * 16);
            vr[r][4 * part] = x.x;
            vr[r][4 * part + 1] = x.y;
            vr[r][4 * part + 2] = x.z;
            vr[r][4 * part + 3] = x.w;
          }
        }
      }
#pragma unroll
      for (int wd = 0; wd < VW; ++wd) {
        if constexpr (DT == kF16) {
          // word wd holds elements 2 wd (low half) and 2 wd + 1
          const uint32_t lo0 = pair16<0, 0>(vr[0][wd], vr[1][wd]), lo1 = pair16<0, 0>(vr[2][wd], vr[3][wd]);
          const uint32_t hi0 = pair16<1, 1>(vr[0][wd], vr[1][wd]), hi1 = pair16<1, 1>(vr[2][wd], vr[3][wd]);
          mma_row8(acc[2 * wd][0], acc[2 * wd][1], ph0, ph1, lo0, lo1);
          mma_row8(acc[2 * wd + 1][0], acc[2 * wd + 1][1], ph0, ph1, hi0, hi1);
          mma_row8(acc[2 * wd][0], acc[2 * wd][1], pl0, pl1, lo0, lo1);
          mma_row8(acc[2 * wd + 1][0], acc[2 * wd + 1][1], pl0, pl1, hi0, hi1);
        } else {
          // word wd holds elements 4 wd .. 4 wd + 3
          uint32_t b0[4], b1[4];
          b0[0] = pair8<DT, 0, 0>(vr[0][wd], vr[1][wd]);
          b1[0] = pair8<DT, 0, 0>(vr[2][wd], vr[3][wd]);
          b0[1] = pair8<DT, 1, 1>(vr[0][wd], vr[1][wd]);
          b1[1] = pair8<DT, 1, 1>(vr[2][wd], vr[3][wd]);
          b0[2] = pair8<DT, 2, 2>(vr[0][wd], vr[1][wd]);
          b1[2] = pair8<DT, 2, 2>(vr[2][wd], vr[3][wd]);
          b0[3] = pair8<DT, 3, 3>(vr[0][wd], vr[1][wd]);
          b1[3] = pair8<DT, 3, 3>(vr[2][wd], vr[3][wd]);
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            mma_row8(acc[4 * wd + q][0], acc[4 * wd + q][1], ph0, ph1, b0[q], b1[q]);
            mma_row8(acc[4 * wd + q][0], acc[4 * wd + q][1], pl0, pl1, b0[q], b1[q]);
          }
        }
      }
    }
    rd = rd + 1 == ST ? 0 : rd + 1;
  }
  cp_async_wait<0>();
  __syncthreads();  // the epilogue reuses the rings

  if (bad_block) raise_flag(p.err, kErrBlockId);
  l += __shfl_xor_sync(0xFFFFFFFFu, l, 1);
  l += __shfl_xor_sync(0xFFFFFFFFu, l, 2);
  float* sm_acc = reinterpret_cast<float*>(smem);  // [warp][row][D]
  float* sm_ml = sm_acc + kWarps * kMmaMaxGroup * D;  // [warp][row][2]
  const float out_mul = DT == kInt8 ? vmax : 1.f;
#pragma unroll
  for (int e = 0; e < C::kNT; ++e)
#pragma unroll
    for (int j = 0; j < 2; ++j) sm_acc[(warp * kMmaMaxGroup + g) * D + sigma<DT, D>(e, 2 * t + j)] = acc[e][j] * out_mul;
  if (t == 0) {
    sm_ml[(warp * kMmaMaxGroup + g) * 2] = m;
    sm_ml[(warp * kMmaMaxGroup + g) * 2 + 1] = l;
  }
  __syncthreads();
  for (int idx = tid; idx < ng * D; idx += kThreads) {
    const int r = idx / D, d = idx - r * D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_ml[(w * kMmaMaxGroup + r) * 2]);
    float L = 0.f, o = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float mw = sm_ml[(w * kMmaMaxGroup + r) * 2];
        const float wt = mw == -INFINITY ? 0.f : exp2f(mw - M);
        L += sm_ml[(w * kMmaMaxGroup + r) * 2 + 1] * wt;
        o = fmaf(sm_acc[(w * kMmaMaxGroup + r) * D + d], wt, o);
      }
    }
    const int64_t row = static_cast<int64_t>(s) * p.Hq + h * p.G + g0 + r;
    if (p.splits == 1) {
      p.out[row * D + d] = L > 0.f ? o * (p.vmul / L) : 0.f;
    } else {
      const int64_t at = row * p.splits + split;
      p.part_o[at * D + d] = L > 0.f ? o / L : 0.f;
      if (d == 0) p.part_lse[at] = L > 0.f ? M + log2f(L) : -INFINITY;
    }
  }
}

template <int DT, int D, int TK>
void launch_one(const DecodeParams& p, dim3 grid, cudaStream_t s) {
  constexpr int bytes = MmaCfg<DT, D, TK>::kSmem;
  static std::mutex mu;
  static bool ready[64] = {};  // per device: the dynamic shared memory opt-in (> 48 KB)
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    throw std::runtime_error("paged_attention_decode: no current CUDA device");
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!ready[dev]) {
      if (cudaFuncSetAttribute(decode_mma_kernel<DT, D, TK>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) !=
          cudaSuccess) {
        cudaGetLastError();
        throw std::runtime_error("paged_attention_decode: cannot reserve " + std::to_string(bytes) +
                                 " bytes of shared memory for the tensor-core kernel");
      }
      ready[dev] = true;
    }
  }
  decode_mma_kernel<DT, D, TK><<<grid, kThreads, bytes, s>>>(p);
}

template <int D, int TK>
int smem_for(int cache_dtype) {
  if constexpr (TK == 16) {
    if (cache_dtype == kF16) return MmaCfg<kF16, D, TK>::kSmem;
  }
  return cache_dtype == kFp8 ? MmaCfg<kFp8, D, TK>::kSmem : MmaCfg<kInt8, D, TK>::kSmem;
}

template <int D, int TK>
void launch_d(const DecodeParams& p, int cache_dtype, dim3 grid, cudaStream_t s) {
  if constexpr (TK == 16) {  // float16 runs 16-key tiles only (decode_mma_tile_keys)
    if (cache_dtype == kF16) return launch_one<kF16, D, TK>(p, grid, s);
  }
  if (cache_dtype == kFp8) launch_one<kFp8, D, TK>(p, grid, s);
  else launch_one<kInt8, D, TK>(p, grid, s);
}

}  // namespace

int decode_mma_tile_keys(int cache_dtype, int requested) {
  return requested == 32 && cache_dtype != kF16 ? 32 : 16;  // float16 tiles of 32 keys would halve the ring depth
}

bool decode_mma_eligible(int cache_dtype, int64_t head_dim, int tile_keys, int device) {
  if (!(cache_dtype == kF16 || cache_dtype == kFp8 || cache_dtype == kInt8)) return false;
  if ((head_dim != 64 && head_dim != 128) || tile_keys != decode_mma_tile_keys(cache_dtype, tile_keys)) return false;
  static std::mutex mu;
  static int major[64] = {}, smem_optin[64] = {};
  if (device < 0 || device >= 64) return false;
  std::lock_guard<std::mutex> lock(mu);
  if (major[device] == 0) {
    int v = 0, b = 0;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&b, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
      cudaGetLastError();
      v = -1;
    }
    major[device] = v;
    smem_optin[device] = b;
  }
  const int need = head_dim == 64 ? (tile_keys == 16 ? smem_for<64, 16>(cache_dtype) : smem_for<64, 32>(cache_dtype))
                                  : (tile_keys == 16 ? smem_for<128, 16>(cache_dtype) : smem_for<128, 32>(cache_dtype));
  // mma.sync m16n8k16 with float16 inputs and cp.async need sm_80; the ring needs its shared memory
  return major[device] >= 8 && smem_optin[device] >= need;
}

void decode_mma_launch(const DecodeParams& p, int cache_dtype, int head_dim, int tile_keys, dim3 grid,
                       cudaStream_t s) {
  if (head_dim == 64) {
    if (tile_keys == 32) launch_d<64, 32>(p, cache_dtype, grid, s);
    else launch_d<64, 16>(p, cache_dtype, grid, s);
  } else {
    if (tile_keys == 32) launch_d<128, 32>(p, cache_dtype, grid, s);
    else launch_d<128, 16>(p, cache_dtype, grid, s);
  }
}

}  // namespace cuda
}  // namespace infercore
