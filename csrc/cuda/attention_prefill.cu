// Paged attention prefill on CUDA: causal flash attention for new tokens packed over sequences
// (q [T, Hq, D], sequence s owns rows query_start_loc[s]:query_start_loc[s+1], the last positions
// of its seq_lens[s]), whose earlier context (a cached prefix, possibly shared between sequences)
// and own K/V are read from the paged cache. Never materialises T x L scores: tiles of 32 query
// rows x 32 cache tokens with a float32 online softmax.
//
// Grid (row tile, sequence, kv head), 128 threads. A row is one (new token, head of the GQA
// group) pair, rows ordered token-major, so one tile holds 32 / G tokens x G heads and every K/V
// tile it loads serves the whole group. Per key tile: 128 threads load K and V (8-element vector
// loads, dequantised to float32 with the scales applied) into shared memory; thread (row r,
// quarter j) computes the scores of keys j, j + 4, ... for row r, the row's max/sum are finished
// with two shuffles, probabilities go through shared memory (within the warp) and the thread
// accumulates its D / 4 output columns (interleaved float4 chunks: conflict-free reads of V).
//
// CUDA cores only. TODO(tensor cores): mma.sync m16n8k16 (fp16/bf16 caches, and fp8/int8 after
// dequantising into a 16-bit smem tile) for Q K^T and P V, with cp.async double-buffered K/V
// tiles — the FlashAttention-2 layout. The CUDA-core version is correct but compute bound.
//
// Napkin math: 4 * T * L_avg * Hq * D flops (causal: L_avg ~ context + T/2) and K/V bytes read
// once per query tile: with T = 4096 new tokens, Hq 32, D 128, no prefix, 137 GFLOP. Shared
// memory feeds 9 LDS.128 per 32 FMAs per thread, so this runs at roughly a quarter of the FP32
// FMA peak (~13 TFLOP/s on an H100): ~10 ms, against ~0.3 ms at tensor-core rates — hence TODO.
//
// Status: compiled for sm_80 / sm_90 without spills; NOT yet run on a GPU (none was available
// when it was written) — tests/gpu/test_attention_cuda.py checks it against the float64 reference.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "attention_common.cuh"
#include "attention_launch.h"
#include "launch.h"

namespace infercore {
namespace cuda {
namespace {
using namespace attn;

constexpr int kRows = 32;  // query rows per block
constexpr int kKeys = 32;  // cache tokens per tile
constexpr int kThreads = 128;
constexpr float kLog2e = 1.4426950408889634f;

struct PrefillParams {
  const void* q;
  float* out;
  const char* kc;
  const char* vc;
  const float* ks;
  const float* vs;
  const int32_t* bt;
  const int32_t* lens;
  const int32_t* qsl;
  int* err;
  int64_t max_blocks, num_blocks, num_tokens;
  int bs, Hkv, Hq, D, G;
  int q_dtype;
  int window;
  float qmul;          // scale * log2(e)
  float kmul, vmul;    // per-layer scales (* 256 for fp8); 1 for int8 (per-token scales instead)
};

size_t smem_bytes(int D) {
  return (static_cast<size_t>(kRows + 2 * kKeys) * (D + 4) + kRows * (kKeys + 1) + kKeys) * sizeof(float);
}

template <int DT, int DMAX>
__global__ void __launch_bounds__(kThreads) prefill_kernel(const PrefillParams p) {
  constexpr int ND4 = DMAX / 16;  // float4 output chunks per thread
  extern __shared__ __align__(16) float smem[];
  const int D = p.D, ld = D + 4;
  float* Qs = smem;                 // [kRows][ld], pre-scaled
  float* Ks = Qs + kRows * ld;      // [kKeys][ld], dequantised * scale
  float* Vs = Ks + kKeys * ld;      // [kKeys][ld]
  float* Ps = Vs + kKeys * ld;      // [kRows][kKeys + 1]
  float* kvalid = Ps + kRows * (kKeys + 1);  // [kKeys]: 1 when the key's block id was in range

  const int s = blockIdx.y, h = blockIdx.z;
  const int tile = gridDim.x - 1 - blockIdx.x;  // longest tiles (latest tokens) first
  const int first = p.qsl[s];
  const int n = p.qsl[s + 1] - first;
  int len = p.lens[s];
  const int64_t cap = p.max_blocks * p.bs;
  if (n < 0 || first < 0 || first + static_cast<int64_t>(n) > p.num_tokens) {
    if (threadIdx.x == 0 && tile == 0 && h == 0) raise_flag(p.err, kErrQueryLoc);
    return;
  }
  if (len < n || len > cap) {
    if (threadIdx.x == 0 && tile == 0 && h == 0) raise_flag(p.err, kErrSeqLen);
    return;
  }
  const int rho0 = tile * kRows;
  if (rho0 >= n * p.G) return;  // whole block leaves together

  const int tid = threadIdx.x;
  const int r = tid >> 2, j = tid & 3;
  const int rho = rho0 + r;
  const bool row_ok = rho < n * p.G;
  const int i = rho / p.G, g = rho - (rho / p.G) * p.G;
  const int pos = len - n + i;  // absolute position of this row's token
  const int lo = p.window > 0 ? max(0, pos + 1 - p.window) : 0;

  // Q tile -> shared memory (row-major, scaled).
  for (int x = tid; x < kRows * D; x += kThreads) {
    const int rr = x / D, d = x - rr * D;
    const int rh = rho0 + rr;
    float v = 0.f;
    if (rh < n * p.G) {
      const int ti = rh / p.G, tg = rh - ti * p.G;
      v = load_in(p.q, p.q_dtype, ((static_cast<int64_t>(first) + ti) * p.Hq + h * p.G + tg) * D + d) * p.qmul;
    }
    Qs[rr * ld + d] = v;
  }
  const int i_first = rho0 / p.G;
  const int i_last = min(n - 1, (rho0 + kRows - 1) / p.G);
  const int kb = p.window > 0 ? max(0, len - n + i_first + 1 - p.window) : 0;
  const int ke = len - n + i_last + 1;

  float m = -INFINITY, l = 0.f;
  float4 acc[ND4];
#pragma unroll
  for (int c = 0; c < ND4; ++c) acc[c] = make_float4(0.f, 0.f, 0.f, 0.f);

  const int32_t* btr = p.bt + static_cast<int64_t>(s) * p.max_blocks;
  const int64_t tok_stride = static_cast<int64_t>(p.Hkv) * D * KvT<DT>::esz;
  const int chunks = D / 8;

  for (int tb = kb; tb < ke; tb += kKeys) {
    __syncthreads();  // the previous tile's K/V/P are consumed
    for (int x = tid; x < kKeys * chunks; x += kThreads) {
      const int key = x / chunks, c = x - key * chunks;
      const int t = tb + key;
      float kf[8], vf[8];
      bool ok = t < ke;
      int64_t slot = 0;
      if (ok) {
        const int bi = t / p.bs;
        const int blk = __ldg(btr + bi);
        if (blk < 0 || blk >= p.num_blocks) {
          raise_flag(p.err, kErrBlockId);
          ok = false;
        } else {
          slot = static_cast<int64_t>(blk) * p.bs + (t - bi * p.bs);
        }
      }
      if (ok) {
        const int64_t off = slot * tok_stride + (static_cast<int64_t>(h) * D + c * 8) * KvT<DT>::esz;
        Raw<DT, 8> kr, vr;
        load_raw<DT, 8>(p.kc + off, kr);
        load_raw<DT, 8>(p.vc + off, vr);
        dequant<DT, 8>(kr, kf);
        dequant<DT, 8>(vr, vf);
        float km = p.kmul, vm = p.vmul;
        if constexpr (DT == kInt8) {
          km = __ldg(p.ks + slot * p.Hkv + h);
          vm = __ldg(p.vs + slot * p.Hkv + h);
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          kf[e] *= km;
          vf[e] *= vm;
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) kf[e] = vf[e] = 0.f;
      }
      float* kd = Ks + key * ld + c * 8;
      float* vd = Vs + key * ld + c * 8;
      *reinterpret_cast<float4*>(kd) = make_float4(kf[0], kf[1], kf[2], kf[3]);
      *reinterpret_cast<float4*>(kd + 4) = make_float4(kf[4], kf[5], kf[6], kf[7]);
      *reinterpret_cast<float4*>(vd) = make_float4(vf[0], vf[1], vf[2], vf[3]);
      *reinterpret_cast<float4*>(vd + 4) = make_float4(vf[4], vf[5], vf[6], vf[7]);
      if (c == 0) kvalid[key] = ok ? 1.f : 0.f;
    }
    __syncthreads();

    // Scores of keys j, j + 4, ..., for row r.
    float sc[kKeys / 4];
#pragma unroll
    for (int kk = 0; kk < kKeys / 4; ++kk) sc[kk] = 0.f;
    const float* qrow = Qs + r * ld;
    for (int d = 0; d < D; d += 4) {
      const float4 q4 = *reinterpret_cast<const float4*>(qrow + d);
#pragma unroll
      for (int kk = 0; kk < kKeys / 4; ++kk) {
        const float4 k4 = *reinterpret_cast<const float4*>(Ks + (j + 4 * kk) * ld + d);
        sc[kk] = fmaf(q4.x, k4.x, fmaf(q4.y, k4.y, fmaf(q4.z, k4.z, fmaf(q4.w, k4.w, sc[kk]))));
      }
    }
    float mt = -INFINITY;
#pragma unroll
    for (int kk = 0; kk < kKeys / 4; ++kk) {
      const int key = j + 4 * kk;
      const int t = tb + key;
      const bool vis = row_ok && t >= lo && t <= pos && kvalid[key] != 0.f;
      sc[kk] = vis ? sc[kk] : -INFINITY;
      mt = fmaxf(mt, sc[kk]);
    }
    mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, 1));
    mt = fmaxf(mt, __shfl_xor_sync(0xFFFFFFFFu, mt, 2));
    const float mn = fmaxf(m, mt);
    const bool none = mn == -INFINITY;
    const float alpha = none ? 1.f : exp2f(m - mn);
    float sum = 0.f;
    float* prow = Ps + r * (kKeys + 1);
#pragma unroll
    for (int kk = 0; kk < kKeys / 4; ++kk) {
      const float pk = none ? 0.f : exp2f(sc[kk] - mn);
      sum += pk;
      prow[j + 4 * kk] = pk;
    }
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
    l = l * alpha + sum;
    m = mn;
    __syncwarp();  // a row's probabilities are written and read by its own 4 lanes
#pragma unroll
    for (int c = 0; c < ND4; ++c) {
      acc[c].x *= alpha;
      acc[c].y *= alpha;
      acc[c].z *= alpha;
      acc[c].w *= alpha;
    }
    const int kmax = min(kKeys, ke - tb);
    for (int key = 0; key < kmax; ++key) {
      const float pk = prow[key];
      const float* vrow = Vs + key * ld;
#pragma unroll
      for (int c = 0; c < ND4; ++c) {
        const int d = 4 * (j + 4 * c);
        if (d < D) {
          const float4 v4 = *reinterpret_cast<const float4*>(vrow + d);
          acc[c].x = fmaf(pk, v4.x, acc[c].x);
          acc[c].y = fmaf(pk, v4.y, acc[c].y);
          acc[c].z = fmaf(pk, v4.z, acc[c].z);
          acc[c].w = fmaf(pk, v4.w, acc[c].w);
        }
      }
    }
    __syncwarp();
  }

  if (!row_ok) return;
  const float inv = l > 0.f ? 1.f / l : 0.f;
  float* orow = p.out + ((static_cast<int64_t>(first) + i) * p.Hq + h * p.G + g) * D;
#pragma unroll
  for (int c = 0; c < ND4; ++c) {
    const int d = 4 * (j + 4 * c);
    if (d < D)
      *reinterpret_cast<float4*>(orow + d) = make_float4(acc[c].x * inv, acc[c].y * inv, acc[c].z * inv, acc[c].w * inv);
  }
}

template <int DT>
void launch_dt(const PrefillParams& p, dim3 grid, cudaStream_t st) {
  const size_t smem = smem_bytes(p.D);
  if (p.D <= 128) {
    cudaFuncSetAttribute(prefill_kernel<DT, 128>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    prefill_kernel<DT, 128><<<grid, kThreads, smem, st>>>(p);
  } else {
    cudaFuncSetAttribute(prefill_kernel<DT, 256>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    prefill_kernel<DT, 256><<<grid, kThreads, smem, st>>>(p);
  }
}

}  // namespace

void check_attn_dev(const PagedAttnDev& a, bool prefill);  // attention_decode.cu

void paged_attention_prefill_launch(const PagedAttnDev& a) {
  check_attn_dev(a, true);
  const KvCacheDev& c = a.cache;
  if (a.num_tokens == 0 || a.num_seqs == 0) return;
  if (a.num_seqs > 65535) throw std::invalid_argument("seq_lens: at most 65535 sequences per prefill launch on CUDA");
  if (a.num_tokens > 2147483647LL) throw std::invalid_argument("q: too many tokens");
  if (a.max_query_len < 0 || a.max_query_len > a.num_tokens)
    throw std::invalid_argument("max_query_len: expected 0..num_tokens, got " + std::to_string(a.max_query_len));
  if (a.max_query_len == 0) return;
  const int64_t G = a.num_heads / c.num_kv_heads;
  if (a.max_query_len * G > 2147483647LL) throw std::invalid_argument("q: too many rows per sequence");
  const int64_t tiles = (a.max_query_len * G + kRows - 1) / kRows;

  PrefillParams p;
  p.q = reinterpret_cast<const void*>(a.q);
  p.out = reinterpret_cast<float*>(a.out);
  p.kc = reinterpret_cast<const char*>(c.k);
  p.vc = reinterpret_cast<const char*>(c.v);
  p.ks = reinterpret_cast<const float*>(c.k_scales);
  p.vs = reinterpret_cast<const float*>(c.v_scales);
  p.bt = reinterpret_cast<const int32_t*>(a.block_tables);
  p.lens = reinterpret_cast<const int32_t*>(a.seq_lens);
  p.qsl = reinterpret_cast<const int32_t*>(a.query_start_loc);
  p.err = reinterpret_cast<int*>(a.err);
  p.max_blocks = a.max_blocks;
  p.num_blocks = c.num_blocks;
  p.num_tokens = a.num_tokens;
  p.bs = static_cast<int>(c.block_size);
  p.Hkv = static_cast<int>(c.num_kv_heads);
  p.Hq = static_cast<int>(a.num_heads);
  p.D = static_cast<int>(c.head_dim);
  p.G = static_cast<int>(G);
  p.q_dtype = a.q_dtype;
  p.window = static_cast<int>(a.sliding_window);
  p.qmul = a.scale * kLog2e;
  const float fp8_fold = c.dtype == kFp8 ? 256.f : 1.f;
  p.kmul = c.dtype == kInt8 ? 1.f : c.k_scale * fp8_fold;
  p.vmul = c.dtype == kInt8 ? 1.f : c.v_scale * fp8_fold;

  const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(a.num_seqs), static_cast<unsigned>(c.num_kv_heads));
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(a.stream);
  switch (c.dtype) {
    case kF32: launch_dt<kF32>(p, grid, st); break;
    case kF16: launch_dt<kF16>(p, grid, st); break;
    case kBF16: launch_dt<kBF16>(p, grid, st); break;
    case kFp8: launch_dt<kFp8>(p, grid, st); break;
    default: launch_dt<kInt8>(p, grid, st); break;
  }
  check_launch("paged_attention_prefill");
}

}  // namespace cuda
}  // namespace infercore
