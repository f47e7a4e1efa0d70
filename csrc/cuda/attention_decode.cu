// Paged attention decode on CUDA (flash-decoding): one query token per sequence against its
// paged K/V cache ([num_blocks, block_size, Hkv, D], NHD), GQA, optional sliding window, float32
// online softmax, split-K over long contexts with a log-sum-exp merge kernel.
//
// Grid (sequence, kv head x head chunk, split); 128 threads. A "key group" of TPK threads
// (TPK = D / VEC rounded up to a power of two) holds one K row: each thread loads one 16-byte
// vector (VEC = 8 float16/bfloat16, 16 fp8/int8, 4 float32) and keeps its VEC-slice of the query
// of every head of the GQA group in registers, so each K/V row is read once for the whole group
// (up to 4 heads per block; larger groups are cut into chunks that share the rows through L2).
// Dot products are finished with log2(TPK) shuffles; each key group runs its own online softmax
// over U keys at a time and accumulates p * V into its VEC-slice; the 4 x 32 / TPK key groups
// of a block are merged at the end (shuffles, then shared memory). fp8 is dequantised by moving
// its bits into a binary16 (value / 256: the 256 and the per-layer scale are folded into the
// query and the output), int8 through the 2^23 magic number with the per-token-per-head scales
// folded into the scores (k) and the probabilities (v).
//
// Memory pipeline: the K/V chunks do not go through registers. Each thread cp.async-copies its
// own chunks of the next tiles into private slots of a shared-memory ring (DecodeCfg: 48 KB,
// 3-8 tiles deep) and reads back only what it copied, so no barrier is needed; kStages - 1 tiles
// stay in flight while one is computed, and the block-table lookups of those tiles are done
// when they are issued. The first version loaded K/V into registers and used them in the same
// iteration: 46% of HBM on an H200 (7B, S 16, ctx 4096, float16), latency bound at ~12 warps
// per SM with one tile in flight.
//
// Napkin math: per (sequence, kv head, key) 2 * D * esz bytes (+ 8 for int8 scales) and
// 4 * G * D flops. 7B-like (Hkv 8, D 128, G 4) float16 at S = 16, ctx 4096: 268 MB per call ->
// 56 us at 4.8 TB/s (H200 HBM3e); 4 * 4 * 128 flops per 512 bytes = 4 flop/byte, far under
// the FP32 ridge (~20 flop/byte): bandwidth bound. Latency x bandwidth: ~0.7 us x 4.8 TB/s /
// 132 SMs = ~25 KB per SM must be in flight; the ring keeps ~64-96 KB requested per SM.
// The instruction budget is what binds first on fp8/int8: a thread spends ~3 integer ops per
// element dequantising plus G FMAs per element for K and again for V, ~200 instructions per
// key at G = 4 for 16 elements of fp8 — about 17 B/clk/SM of issue against the ~18 B/clk/SM
// HBM share, so fp8/int8 decode is expected to get near, not to, 2x float16.
//
// Splits: ~8 (sequence, kv head, split) blocks per SM, >= 64 keys each, so that S = 1 still
// streams at HBM bandwidth and the last wave is short (paged_attention_decode_splits).
//
// float16, fp8 and int8 caches with head_dim 64 or 128 go to the tensor-core kernel
// (attention_decode_mma.cu: 1.3-1.5x this one at 7B geometry on an H200) unless
// INFERCORE_CUDA_ATTN_MMA=0; this kernel takes float32 and bfloat16 caches, other head sizes,
// and devices without the shared memory the other needs.
//
// Status: compiled for sm_80 / sm_89 / sm_90 with no spills (register cap from 3 blocks per SM,
// 2 for int8 with 16 x 4 per thread). This cp.async ring version passes
// tests/gpu/test_attention_cuda.py on an H200 (head dims 40..256 included) and measured there
// 47.5% of HBM at S 16 and 55% at S 64 (7B geometry, ctx 4096, float16; torch SDPA on a
// contiguous cache ~99%): issue-bound (ncu: 63% of issue slots busy at 12 warps per SM).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "attention_common.cuh"
#include "attention_decode.h"
#include "attention_launch.h"
#include "launch.h"

namespace infercore {
namespace cuda {
namespace {
using namespace attn;

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxGroup = 4;   // query heads per block (register-resident)
constexpr int kMaxD = 256;
constexpr int kMaxSplits = 256;
constexpr float kLog2e = 1.4426950408889634f;

// Per-instantiation pipeline shape. Each thread copies its own K/V chunks (U keys x VEC
// elements, one 8/16/32-byte chunk each) into its private slots of a ring of kStages tiles in
// shared memory and later reads back only what it copied itself, so the ring needs no barrier:
// cp.async.wait_group alone orders a thread's copy before its read. kStages - 1 tiles stay in
// flight while one is computed: at 48 KB per block and 3 blocks per SM that is ~96 KB of K/V
// requested ahead per SM, several times the ~30 KB HBM latency x bandwidth product of an SM.
constexpr int kRingBytes = 48 * 1024;  // no dynamic shared memory opt-in needed
template <int DT, int VEC, int GC>
struct DecodeCfg {
  static constexpr int kRaw = Raw<DT, VEC>::kBytes;  // bytes per chunk: 8, 16 or 32
  static constexpr int U = (VEC * GC >= 48 || kRaw == 32) ? 2 : 4;  // keys per key group per tile
  static constexpr int kScaleBytes = DT == kInt8 ? U * 2 * 4 * kThreads : 0;
  static constexpr int kStageBytes = U * 2 * kRaw * kThreads + kScaleBytes;
  static constexpr int kStages = kRingBytes / kStageBytes > 8 ? 8 : kRingBytes / kStageBytes;
  static constexpr int kEpilogueBytes = (kWarps * GC * kMaxD + kWarps * GC * 2) * 4;
  static constexpr int kSmem = kStages * kStageBytes > kEpilogueBytes ? kStages * kStageBytes : kEpilogueBytes;
  // Blocks per SM the registers are capped for (168 each at 3); int8 at 16 x 4 would spill there.
  static constexpr int kMinBlocks = DT == kInt8 && VEC * GC >= 64 ? 2 : 3;
  static_assert(kStages >= 2 && kStages * U <= 32, "ring of 2..8 stages; one valid bit per (stage, key)");
  static_assert(kSmem <= 48 * 1024, "dynamic shared memory above 48 KB needs an opt-in");
};

template <int DT, int VEC, int GC>
__global__ void __launch_bounds__(kThreads, (DecodeCfg<DT, VEC, GC>::kMinBlocks)) decode_kernel(const DecodeParams p) {
  using Cfg = DecodeCfg<DT, VEC, GC>;
  constexpr int U = Cfg::U, ST = Cfg::kStages, R = Cfg::kRaw;
  constexpr int P = R >= 16 ? R / 16 : 1;  // 16-byte parts per chunk (one 8-byte part when R == 8)
  extern __shared__ __align__(16) char smem[];

  const int s = blockIdx.x;
  const int h = blockIdx.y / p.nchunks;
  const int g0 = (blockIdx.y % p.nchunks) * p.gc;
  const int ng = min(p.gc, p.G - g0);
  const int j = blockIdx.z;
  const int tid = threadIdx.x;
  const int lane = tid & 31, warp = tid >> 5;
  const int tpk = 1 << p.tpk_log2;
  const int sub = lane & (tpk - 1), grp = lane >> p.tpk_log2, gpw = 32 >> p.tpk_log2;
  const int d0 = sub * VEC;
  const bool act = d0 < p.D;

  // Attended key range of this split (lengths beyond the block table are clamped and flagged).
  int len = p.lens[s];
  const int64_t cap = p.max_blocks * p.bs;
  if (len < 1 || len > cap) {
    if (threadIdx.x == 0 && j == 0 && blockIdx.y == 0) raise_flag(p.err, kErrSeqLen);
    len = len < 0 ? 0 : static_cast<int>(len > cap ? cap : len);
  }
  const int kb0 = p.window > 0 ? max(0, len - p.window) : 0;
  const int chunk = (len - kb0 + p.splits - 1) / p.splits;
  const int kb = min(len, kb0 + j * chunk);
  const int ke = min(len, kb + chunk);

  float qr[GC][VEC];
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    const int64_t base = (static_cast<int64_t>(s) * p.Hq + h * p.G + g0 + g) * p.D + d0;
#pragma unroll
    for (int e = 0; e < VEC; ++e) qr[g][e] = (g < ng && act) ? load_in(p.q, p.q_dtype, base + e) * p.qmul : 0.f;
  }
  float m[GC], l[GC], acc[GC][VEC];
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < VEC; ++e) acc[g][e] = 0.f;
  }

  const int32_t* btr = p.bt + static_cast<int64_t>(s) * p.max_blocks;
  const int64_t tok_stride = static_cast<int64_t>(p.Hkv) * p.D * KvT<DT>::esz;  // bytes between tokens of a block
  const char* kh = p.kc + (static_cast<int64_t>(h) * p.D + d0) * KvT<DT>::esz;
  const char* vh = p.vc + (static_cast<int64_t>(h) * p.D + d0) * KvT<DT>::esz;

  // Ring slot of (stage, key u, K or V, part) for this thread: consecutive threads hold
  // consecutive 16-byte (or 8-byte) words, so the reads back are free of bank conflicts.
  auto chunk_at = [&](int stage, int u, int kv, int part) -> char* {
    return smem + ((((stage * U + u) * 2 + kv) * P + part) * kThreads + tid) * (R >= 16 ? 16 : 8);
  };
  float* scale_ring = reinterpret_cast<float*>(smem + ST * U * 2 * R * kThreads);  // int8 only
  auto scale_at = [&](int stage, int u, int kv) -> float* { return scale_ring + ((stage * U + u) * 2 + kv) * kThreads + tid; };

  // The warp's tiles start at tw0, tw0 + step, ...: warp-uniform, as the shuffles need.
  const int step = kWarps * gpw * U;
  const int tw0 = kb + warp * gpw * U;
  const int ntiles = tw0 < ke ? (ke - tw0 + step - 1) / step : 0;
  uint32_t vmask = 0;      // bit (stage * U + u): that key is attended
  bool bad_block = false;  // an out-of-range block id was seen (and skipped)

  auto issue = [&](int tile, int stage) {
    const int t0 = tw0 + tile * step + grp * U;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int t = t0 + u;
      bool ok = t < ke;
      int64_t slot = 0;
      if (ok) {
        const int bi = p.bs_shift >= 0 ? t >> p.bs_shift : t / p.bs;
        const int blk = __ldg(btr + bi);
        if (blk < 0 || blk >= p.num_blocks) {
          bad_block = true;
          ok = false;
        } else {
          slot = static_cast<int64_t>(blk) * p.bs + (t - bi * p.bs);
        }
      }
      const uint32_t bit = 1u << (stage * U + u);
      vmask = ok ? (vmask | bit) : (vmask & ~bit);
      const bool ld = ok && act;
      const char* ks = ld ? kh + slot * tok_stride : p.kc;
      const char* vs = ld ? vh + slot * tok_stride : p.vc;
#pragma unroll
      for (int part = 0; part < P; ++part) {
        cp_async<(R >= 16 ? 16 : 8)>(chunk_at(stage, u, 0, part), ks + part * 16, ld);
        cp_async<(R >= 16 ? 16 : 8)>(chunk_at(stage, u, 1, part), vs + part * 16, ld);
      }
      if constexpr (DT == kInt8) {
        cp_async<4>(scale_at(stage, u, 0), ok ? p.ks + slot * p.Hkv + h : p.ks, ok);
        cp_async<4>(scale_at(stage, u, 1), ok ? p.vs + slot * p.Hkv + h : p.vs, ok);
      }
    }
  };
  auto read_chunk = [&](int stage, int u, int kv, Raw<DT, VEC>& r) {
    if constexpr (R == 8) {
      const uint2 a = *reinterpret_cast<const uint2*>(chunk_at(stage, u, kv, 0));
      r.w[0] = a.x;
      r.w[1] = a.y;
    } else {
#pragma unroll
      for (int part = 0; part < P; ++part) {
        const uint4 a = *reinterpret_cast<const uint4*>(chunk_at(stage, u, kv, part));
        r.w[4 * part] = a.x;
        r.w[4 * part + 1] = a.y;
        r.w[4 * part + 2] = a.z;
        r.w[4 * part + 3] = a.w;
      }
    }
  };

  // Prologue: ST - 1 tiles in flight (empty groups keep the group count uniform).
#pragma unroll
  for (int i = 0; i < ST - 1; ++i) {
    if (i < ntiles) issue(i, i);
    cp_async_commit();
  }
  int rd = 0, wr = ST - 1;  // ring stages read now / written next
  for (int i = 0; i < ntiles; ++i) {
    if (i + ST - 1 < ntiles) issue(i + ST - 1, wr);
    cp_async_commit();
    cp_async_wait<ST - 1>();  // tile i has landed (this thread's copies of it)
    float sc[U][GC], ksc[U], vsc[U];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      valid[u] = (vmask >> (rd * U + u)) & 1u;
      ksc[u] = DT == kInt8 ? *scale_at(rd, u, 0) : 1.f;
      vsc[u] = DT == kInt8 ? *scale_at(rd, u, 1) : 1.f;
      Raw<DT, VEC> kr;
      read_chunk(rd, u, 0, kr);
      float kf[VEC];
      dequant<DT, VEC>(kr, kf);
#pragma unroll
      for (int g = 0; g < GC; ++g) {
        float a = 0.f;
#pragma unroll
        for (int e = 0; e < VEC; ++e) a = fmaf(qr[g][e], kf[e], a);
        sc[u][g] = a;
      }
    }
    for (int o = tpk >> 1; o > 0; o >>= 1) {
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int g = 0; g < GC; ++g) sc[u][g] += __shfl_xor_sync(0xFFFFFFFFu, sc[u][g], o);
    }
#pragma unroll
    for (int g = 0; g < GC; ++g) {
      float mt = -INFINITY;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        sc[u][g] = valid[u] ? sc[u][g] * ksc[u] : -INFINITY;
        mt = fmaxf(mt, sc[u][g]);
      }
      const float mn = fmaxf(m[g], mt);
      const bool none = mn == -INFINITY;  // nothing visible yet: leave the state alone
      const float alpha = none ? 1.f : exp2f(m[g] - mn);
      float sum = 0.f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float pu = none ? 0.f : exp2f(sc[u][g] - mn);
        sum += pu;
        sc[u][g] = pu * vsc[u];  // int8: the v scale of the token rides on its probability
      }
      l[g] = l[g] * alpha + sum;
      m[g] = mn;
      // The running max rarely moves after the first tiles: skip the VEC multiplies then (not at
      // VEC x GC = 64, where the branch costs ptxas the registers it needs under 3 blocks per SM).
      if (VEC * GC >= 64 || alpha != 1.f) {
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[g][e] *= alpha;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      Raw<DT, VEC> vr;
      read_chunk(rd, u, 1, vr);
      float vf[VEC];
      dequant<DT, VEC>(vr, vf);
#pragma unroll
      for (int g = 0; g < GC; ++g)
#pragma unroll
        for (int e = 0; e < VEC; ++e) acc[g][e] = fmaf(sc[u][g], vf[e], acc[g][e]);
    }
    rd = rd + 1 == ST ? 0 : rd + 1;
    wr = wr + 1 == ST ? 0 : wr + 1;
  }
  cp_async_wait<0>();
  __syncthreads();  // the epilogue below reuses the ring's shared memory

  if (bad_block) raise_flag(p.err, kErrBlockId);
  float (*sm_acc)[GC][kMaxD] = reinterpret_cast<float (*)[GC][kMaxD]>(smem);
  float (*sm_ml)[GC][2] = reinterpret_cast<float (*)[GC][2]>(smem + kWarps * GC * kMaxD * 4);
  // Merge the key groups of each warp (lanes with the same sub), then the warps.
  for (int o = tpk; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < GC; ++g) {
      const float mo = __shfl_xor_sync(0xFFFFFFFFu, m[g], o);
      const float lo = __shfl_xor_sync(0xFFFFFFFFu, l[g], o);
      const float mn = fmaxf(m[g], mo);
      const float a = m[g] == -INFINITY ? 0.f : exp2f(m[g] - mn);
      const float b = mo == -INFINITY ? 0.f : exp2f(mo - mn);
      l[g] = l[g] * a + lo * b;
      m[g] = mn;
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[g][e] = acc[g][e] * a + __shfl_xor_sync(0xFFFFFFFFu, acc[g][e], o) * b;
    }
  }
  if (grp == 0) {
#pragma unroll
    for (int g = 0; g < GC; ++g) {
      if (sub == 0) {
        sm_ml[warp][g][0] = m[g];
        sm_ml[warp][g][1] = l[g];
      }
      if (act)
#pragma unroll
        for (int e = 0; e < VEC; ++e) sm_acc[warp][g][d0 + e] = acc[g][e];
    }
  }
  __syncthreads();
  if (warp != 0 || grp != 0 || !act) return;
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    if (g >= ng) break;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm_ml[w][g][0]);
    float L = 0.f;
    float o[VEC];
#pragma unroll
    for (int e = 0; e < VEC; ++e) o[e] = 0.f;
    if (M != -INFINITY) {
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        const float mw = sm_ml[w][g][0];
        const float wt = mw == -INFINITY ? 0.f : exp2f(mw - M);
        L += sm_ml[w][g][1] * wt;
#pragma unroll
        for (int e = 0; e < VEC; ++e) o[e] = fmaf(sm_acc[w][g][d0 + e], wt, o[e]);
      }
    }
    const int64_t row = static_cast<int64_t>(s) * p.Hq + h * p.G + g0 + g;
    if (p.splits == 1) {
      const float inv = L > 0.f ? p.vmul / L : 0.f;
      float* dst = p.out + row * p.D + d0;
#pragma unroll
      for (int e = 0; e < VEC; e += 4) *reinterpret_cast<float4*>(dst + e) =
          make_float4(o[e] * inv, o[e + 1] * inv, o[e + 2] * inv, o[e + 3] * inv);
    } else {
      const int64_t at = row * p.splits + j;
      const float inv = L > 0.f ? 1.f / L : 0.f;
      float* dst = p.part_o + at * p.D + d0;
#pragma unroll
      for (int e = 0; e < VEC; e += 4) *reinterpret_cast<float4*>(dst + e) =
          make_float4(o[e] * inv, o[e + 1] * inv, o[e + 2] * inv, o[e + 3] * inv);
      if (sub == 0) p.part_lse[at] = L > 0.f ? M + log2f(L) : -INFINITY;
    }
  }
}

// out[row] = vmul * sum_j 2^(lse_j - M) o_j / sum_j 2^(lse_j - M): one block per (sequence, head).
__global__ void __launch_bounds__(128) decode_reduce_kernel(const float* __restrict__ part_o,
                                                            const float* __restrict__ part_lse,
                                                            float* __restrict__ out, int splits, int D, float vmul) {
  __shared__ float w[kMaxSplits];
  __shared__ float total;
  const int64_t row = blockIdx.x;
  const float* lse = part_lse + row * splits;
  if (threadIdx.x < 32) {
    float M = -INFINITY;
    for (int i = threadIdx.x; i < splits; i += 32) M = fmaxf(M, lse[i]);
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xFFFFFFFFu, M, o));
    float sum = 0.f;
    for (int i = threadIdx.x; i < splits; i += 32) {
      const float x = (M == -INFINITY || lse[i] == -INFINITY) ? 0.f : exp2f(lse[i] - M);
      w[i] = x;
      sum += x;
    }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
    if (threadIdx.x == 0) total = sum;
  }
  __syncthreads();
  const float inv = total > 0.f ? vmul / total : 0.f;
  const float* po = part_o + row * splits * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float a = 0.f;
    for (int i = 0; i < splits; ++i)
      if (w[i] != 0.f) a = fmaf(w[i], po[static_cast<int64_t>(i) * D + d], a);
    out[row * D + d] = a * inv;
  }
}

template <int DT, int VEC, int GC>
void launch_gc(const DecodeParams& p, dim3 grid, cudaStream_t s) {
  decode_kernel<DT, VEC, GC><<<grid, kThreads, DecodeCfg<DT, VEC, GC>::kSmem, s>>>(p);
}

template <int DT, int VEC>
void launch_vec(const DecodeParams& p, int gc, dim3 grid, cudaStream_t s) {
  switch (gc) {
    case 1: launch_gc<DT, VEC, 1>(p, grid, s); break;
    case 2: launch_gc<DT, VEC, 2>(p, grid, s); break;
    case 3: launch_gc<DT, VEC, 3>(p, grid, s); break;
    default: launch_gc<DT, VEC, 4>(p, grid, s); break;
  }
}

// The CUDA-core kernel for any cache: VEC elements per thread, one 16-byte load (32 for float32
// rows over 128 elements, 8 for 1-byte rows whose D is not a multiple of 16); TPK = D / VEC
// rounded up to a power of two.
void launch_cuda_cores(DecodeParams p, int dtype, dim3 grid, cudaStream_t st) {
  int vec;
  switch (dtype) {
    case kF32: vec = p.D <= 128 ? 4 : 8; break;
    case kF16:
    case kBF16: vec = 8; break;
    default: vec = p.D % 16 == 0 ? 16 : 8; break;
  }
  p.tpk_log2 = 0;
  while ((vec << p.tpk_log2) < p.D) ++p.tpk_log2;
  const int gc = p.gc;
  switch (dtype) {
    case kF32:
      if (vec == 4) launch_vec<kF32, 4>(p, gc, grid, st);
      else launch_vec<kF32, 8>(p, gc, grid, st);
      break;
    case kF16: launch_vec<kF16, 8>(p, gc, grid, st); break;
    case kBF16: launch_vec<kBF16, 8>(p, gc, grid, st); break;
    case kFp8:
      if (vec == 16) launch_vec<kFp8, 16>(p, gc, grid, st);
      else launch_vec<kFp8, 8>(p, gc, grid, st);
      break;
    default:
      if (vec == 16) launch_vec<kInt8, 16>(p, gc, grid, st);
      else launch_vec<kInt8, 8>(p, gc, grid, st);
      break;
  }
}

int sm_count(int device) {
  static std::mutex mu;
  static int cache[64] = {};
  if (device < 0 || device >= 64) return 132;
  std::lock_guard<std::mutex> lock(mu);
  if (cache[device] == 0) {
    int n = 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n <= 0) {
      cudaGetLastError();
      n = 132;
    }
    cache[device] = n;
  }
  return cache[device];
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

// Checks shared by the three launchers (declared in kv_cache.cu / attention_prefill.cu too).
void check_cache_dev(const KvCacheDev& c, bool need_scales) {
  if (c.dtype < 0 || c.dtype > 4) throw std::invalid_argument("k_cache: unknown cache dtype code " + std::to_string(c.dtype));
  if (c.num_blocks <= 0 || c.block_size <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0)
    throw std::invalid_argument("k_cache: expected shape [num_blocks, block_size, num_kv_heads, head_dim], every dim > 0");
  if (c.num_blocks > 2147483647LL || c.num_blocks * c.block_size > 2147483647LL)
    throw std::invalid_argument("k_cache: at most 2^31 - 1 slots on CUDA");
  if (c.num_kv_heads > 65535) throw std::invalid_argument("k_cache: at most 65535 kv heads on CUDA");
  if (c.k == 0 || c.v == 0) throw std::invalid_argument("k_cache/v_cache: null device pointer");
  if (c.dtype == kInt8) {
    if (need_scales && (c.k_scales == 0 || c.v_scales == 0))
      throw std::invalid_argument("k_scale/v_scale: int8 caches need float32 [num_blocks, block_size, Hkv] arrays");
  } else if (!(std::isfinite(c.k_scale) && c.k_scale > 0.f && std::isfinite(c.v_scale) && c.v_scale > 0.f)) {
    throw std::invalid_argument("k_scale/v_scale: expected finite numbers > 0");
  }
}

// Decode/prefill argument checks on the host-visible sizes (index values: see the header).
void check_attn_dev(const PagedAttnDev& a, bool prefill) {
  const KvCacheDev& c = a.cache;
  check_cache_dev(c, true);
  if (a.q_dtype < 0 || a.q_dtype > 2) throw std::invalid_argument("q: dtype code must be 0, 1 or 2");
  if (a.num_seqs < 0 || a.num_tokens < 0) throw std::invalid_argument("q: negative dimension");
  if (a.num_heads <= 0 || a.num_heads % c.num_kv_heads != 0)
    throw std::invalid_argument("q: num_heads (" + std::to_string(a.num_heads) +
                                ") must be a positive multiple of the cache's num_kv_heads (" +
                                std::to_string(c.num_kv_heads) + ")");
  if (c.head_dim % 8 != 0 || c.head_dim > kMaxD)
    throw std::invalid_argument("q: the CUDA kernels need head_dim % 8 == 0 and head_dim <= 256, got " +
                                std::to_string(c.head_dim));
  if (!std::isfinite(a.scale)) throw std::invalid_argument("scale: expected a finite number");
  if (a.sliding_window < 0 || a.sliding_window > 2147483647LL)
    throw std::invalid_argument("sliding_window: expected None or a positive int32");
  if (a.num_seqs > 0 && a.max_blocks <= 0) throw std::invalid_argument("block_tables: expected at least one column");
  if (a.max_blocks * c.block_size > 2147483647LL) throw std::invalid_argument("block_tables: capacity exceeds 2^31 - 1");
  if (a.num_tokens > 0 && (a.q == 0 || a.out == 0 || a.block_tables == 0 || a.seq_lens == 0))
    throw std::invalid_argument("q/out/block_tables/seq_lens: null device pointer");
  if (!prefill && a.num_tokens != a.num_seqs) throw std::invalid_argument("q: decode takes one token per sequence");
  if (prefill && a.num_tokens > 0 && a.query_start_loc == 0)
    throw std::invalid_argument("query_start_loc: null device pointer");
  if (a.q % 16 != 0 || a.out % 16 != 0 || c.k % 16 != 0 || c.v % 16 != 0)
    throw std::invalid_argument("q/out/k_cache/v_cache: device pointers must be 16-byte aligned");
}

int64_t paged_attention_decode_splits(int64_t num_seqs, int64_t num_heads, int64_t num_kv_heads, int64_t max_keys,
                                      int device) {
  if (num_seqs <= 0 || num_kv_heads <= 0 || num_heads < num_kv_heads || max_keys <= 0) return 1;
  const int64_t group = num_heads / num_kv_heads;
  const int64_t blocks = num_seqs * num_kv_heads * ceil_div(group, kMaxGroup);
  // ~8 blocks per SM (3-4 are resident at a time): short blocks keep the last wave's tail small.
  int64_t splits = ceil_div(8 * static_cast<int64_t>(sm_count(device)), blocks);
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, max_keys / 64));
  return std::max<int64_t>(1, std::min<int64_t>(splits, kMaxSplits));
}

int64_t paged_attention_decode_workspace(int64_t num_seqs, int64_t num_heads, int64_t head_dim, int64_t num_splits) {
  return num_splits > 1 ? num_seqs * num_heads * num_splits * (head_dim + 1) : 0;
}

void paged_attention_decode_launch(const PagedAttnDev& a) {
  check_attn_dev(a, false);
  const KvCacheDev& c = a.cache;
  if (a.num_seqs == 0) return;
  if (a.num_seqs > 2147483647LL) throw std::invalid_argument("q: too many sequences");
  if (a.num_splits < 1 || a.num_splits > kMaxSplits)
    throw std::invalid_argument("num_splits: expected 1..256, got " + std::to_string(a.num_splits));
  const int64_t need = paged_attention_decode_workspace(a.num_seqs, a.num_heads, c.head_dim, a.num_splits);
  if (need > 0 && (a.workspace == 0 || a.workspace_floats < need || a.workspace % 16 != 0))
    throw std::invalid_argument("workspace: expected a 16-byte aligned float32 buffer of " + std::to_string(need) +
                                " elements for num_splits = " + std::to_string(a.num_splits));
  const int64_t G = a.num_heads / c.num_kv_heads;
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
  const float fp8_fold = c.dtype == kFp8 ? 256.f : 1.f;
  DecodeParams p;
  p.q = reinterpret_cast<const void*>(a.q);
  p.out = reinterpret_cast<float*>(a.out);
  p.part_o = need > 0 ? reinterpret_cast<float*>(a.workspace) : nullptr;
  p.part_lse = need > 0 ? p.part_o + a.num_seqs * a.num_heads * a.num_splits * c.head_dim : nullptr;
  p.kc = reinterpret_cast<const char*>(c.k);
  p.vc = reinterpret_cast<const char*>(c.v);
  p.ks = reinterpret_cast<const float*>(c.k_scales);
  p.vs = reinterpret_cast<const float*>(c.v_scales);
  p.bt = reinterpret_cast<const int32_t*>(a.block_tables);
  p.lens = reinterpret_cast<const int32_t*>(a.seq_lens);
  p.err = reinterpret_cast<int*>(a.err);
  p.max_blocks = a.max_blocks;
  p.num_blocks = c.num_blocks;
  p.bs = static_cast<int>(c.block_size);
  p.bs_shift = -1;
  for (int sh = 0; sh < 31; ++sh)
    if ((int64_t{1} << sh) == c.block_size) p.bs_shift = sh;
  p.Hkv = static_cast<int>(c.num_kv_heads);
  p.Hq = static_cast<int>(a.num_heads);
  p.D = static_cast<int>(c.head_dim);
  p.G = static_cast<int>(G);
  p.splits = static_cast<int>(a.num_splits);
  p.tpk_log2 = 0;
  p.q_dtype = a.q_dtype;
  p.window = static_cast<int>(a.sliding_window);
  p.qmul = a.scale * kLog2e * (c.dtype == kInt8 ? 1.f : c.k_scale * fp8_fold);
  p.vmul = c.dtype == kInt8 ? 1.f : c.v_scale * fp8_fold;

  // float16 / fp8 / int8 caches with head_dim 64 or 128 on sm_80+: the tensor-core kernel
  // (attention_decode_mma.cu); INFERCORE_CUDA_ATTN_MMA=0 keeps this file's kernel (A/B runs).
  const char* mma_env = std::getenv("INFERCORE_CUDA_ATTN_MMA");
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    dev = -1;
  }
  const char* tile_env = std::getenv("INFERCORE_CUDA_ATTN_MMA_TILE");
  const int tile = decode_mma_tile_keys(c.dtype, tile_env != nullptr ? std::atoi(tile_env) : 16);
  const bool mma =
      !(mma_env != nullptr && mma_env[0] == '0') && decode_mma_eligible(c.dtype, c.head_dim, tile, dev);
  const int64_t nchunks = ceil_div(G, mma ? kMmaMaxGroup : kMaxGroup);
  if (c.num_kv_heads * nchunks > 65535) throw std::invalid_argument("q: too many heads for one launch");
  p.nchunks = static_cast<int>(nchunks);
  p.gc = static_cast<int>(ceil_div(G, nchunks));
  const dim3 grid(static_cast<unsigned>(a.num_seqs), static_cast<unsigned>(c.num_kv_heads * nchunks),
                  static_cast<unsigned>(a.num_splits));
  if (mma) {
    decode_mma_launch(p, c.dtype, p.D, tile, grid, st);
    check_launch("paged_attention_decode (tensor cores)");
  } else {
    launch_cuda_cores(p, c.dtype, grid, st);
    check_launch("paged_attention_decode");
  }
  if (a.num_splits > 1) {
    decode_reduce_kernel<<<static_cast<unsigned>(a.num_seqs * a.num_heads), 128, 0, st>>>(
        p.part_o, p.part_lse, p.out, p.splits, p.D, p.vmul);
    check_launch("paged_attention_decode (split-K merge)");
  }
}

}  // namespace cuda
}  // namespace infercore
