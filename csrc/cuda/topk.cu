// Fused CUDA top-k inner-product / cosine search: scores and selection in one pass over the
// corpus, never materialising the Q x N score matrix. Launched on the caller's stream.
//
// STATUS: tests/gpu/test_topk_cuda.py passes on an H200 (sm_90); no spills for sm_80/89/90.
// Measured there (2026-11-26, N = 1M, d = 384, Q = 1, k = 10, scripts/gpu_diag_topk_phases.py):
// the stream scan reads float32 at 4.29 TB/s (torch.mv over the same corpus: 4.25), float16 at
// 3.69 TB/s, int8 at 1.6 TB/s; the whole float32 call's kernels take 375 us.
//
// Napkin math (H100 SXM: ~3.35 TB/s HBM, ~60 TFLOP/s float32 FMA on the CUDA cores):
//   Q = 1, N = 1M, d = 384, float32: 1.54 GB read, 0.77 GFLOP -> 0.5 flop/byte: bandwidth-bound,
//     floor ~0.46 ms (float16 0.23 ms, int8 0.12 ms). Everything else (candidates, merge) is
//     O(S x k) keys, tiny next to the corpus.
//   Q = 4096, k = 1024: 3.2 TFLOP over the same 1.5 GB -> ~2000 flop/byte: FMA-bound, floor
//     ~55 ms; the corpus is re-read once per 128-query tile (32 x 1.5 GB, mostly from L2 since the
//     query tiles of one corpus split run side by side).
//   No tensor cores on purpose: tf32 would change the scores' low bits and break the
//     "identical ids on every backend" contract (the CPU kernel accumulates in float32 FMAs).
//
// Design.
//   Keys: each (score, row) becomes one uint64 that orders exactly like the contract (score
//     descending, then lower id): the score's bits mapped to an order-preserving int32 in the high
//     half (the same mapping as kernels/topk.py; -0.0 is first turned into +0.0 so that it ties
//     with +0.0 as it does on the CPU), 2^32-1-row in the low half, then the sign bit flipped so
//     plain unsigned compares work. 0 is "no candidate" and sorts last. Keys are unique.
//   Phase 1 (scan kernel), grid = (query tiles of BQ, corpus splits S): a block loops over its
//     split in tiles of BR rows and d in chunks of DK; each chunk of the corpus tile (fp16 / int8
//     widened to float32 on the way) and of the query tile is staged in shared memory through
//     registers (16-byte loads of the next chunk are in flight while the current one is used),
//     and each thread accumulates a TQ x TR register tile of dot products, summing j = 0..d-1 in
//     order with fmaf, so a row's score does not depend on where it sits (duplicated rows tie
//     exactly). Cosine: the row norms come from the same pass (sum of squares in registers).
//     Selection: every (query, row) score is tested against the query's threshold key in shared
//     memory; survivors are appended (shared atomic counter) to the query's candidate list in
//     global memory (L2-resident: cap = kk + max(kk, BR) + BR keys). When a list could overflow
//     on the next tile it is compacted to its kk best by a block-wide MSB radix select (8-bit digits,
//     stops as soon as a digit bucket holds exactly the missing count) and the threshold rises
//     to the select's prefix. After the first few tiles almost every score fails the threshold
//     test, so selection costs one compare per score; an adversarial (ascending) corpus costs at
//     most one radix select per max(kk, BR) survivors, still linear in N.
//     Configurations: Q <= 4: 4 queries x 256 rows (1 row/thread, 2 blocks/SM: the bandwidth
//     case, ~64 KB of loads in flight per SM); Q <= 32: 32 x 128 (4x4 per thread); more:
//     128 x 128 (8x8 per thread, 254 registers, 1 block/SM: the FMA-bound case). S is chosen to
//     give ~2 waves of blocks: for Q = 1 the corpus is split over all SMs. Register budgets were
//     tuned against ptxas -v (full unrolls made it hoist every shared load and spill).
//   Q = 1 with rows of whole 16-byte vectors: the stream kernel instead (no staging, see there),
//     one wave of 3 blocks per SM; the tiled kernel ran at ~40% of HBM on this case.
//   Phase 2: each split's list (kk keys, 0-padded) lands in R[q][S*kk]; per query one block
//     radix-selects the best kk and sorts them (bitonic, in shared memory) when kk <= 2048, else
//     a cub radix sort orders all S*kk keys; the first k are decoded (padding: -inf / -1). int8
//     corpora: phase 1 scores with float32 queries against widened rows and keeps a shortlist
//     of k + min(k + 16, N) (as the CPU kernel), which is re-scored in float64 (same formula and
//     order as csrc/cpu/topk.cpp), re-sorted, and the first k returned.
//   Extra device memory (the caller's workspace, topk_workspace_bytes): per query and split
//     (cap + 2 kk) keys, i.e. O(Q x S x (k + BR)) with S bounded, plus cub's temp storage; above
//     `max_workspace` the queries are processed in groups (and S shrinks), never Q x N.
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "launch.h"
#include "topk_launch.h"

namespace infercore {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr uint64_t kSign = 0x8000000000000000ull;

// ---------------------------------------------------------------------------- keys
__device__ __forceinline__ uint64_t pack_key(float s, uint32_t row) {
  int32_t b = __float_as_int(s == 0.f ? 0.f : s);
  b = b < 0 ? (b ^ 0x7FFFFFFF) : b;
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(b)) << 32) | (0xFFFFFFFFu - row);
  return key ^ kSign;
}

__device__ __forceinline__ void unpack_key(uint64_t u, float* score, int64_t* id) {
  if (u == 0) {
    *score = -__int_as_float(0x7F800000);
    *id = -1;
    return;
  }
  const uint64_t key = u ^ kSign;
  int32_t hi = static_cast<int32_t>(static_cast<uint32_t>(key >> 32));
  hi = hi < 0 ? (hi ^ 0x7FFFFFFF) : hi;
  *score = __int_as_float(hi);
  *id = static_cast<int64_t>(0xFFFFFFFFu - static_cast<uint32_t>(key & 0xFFFFFFFFu));
}

// ---------------------------------------------------------------------------- configs
// DK = min(DKMAX, 64 bytes of corpus row per chunk): 4 16-byte staging registers or fewer per
// thread for float32. UK: unroll of the DK loop (a full unroll makes ptxas hoist every shared
// load and spill).
struct CfgS { static constexpr int BQ = 4, TQ = 4, BR = 256, TR = 1, DKMAX = 32, MINB = 2, UK = 1; };
struct CfgM { static constexpr int BQ = 32, TQ = 4, BR = 128, TR = 4, DKMAX = 16, MINB = 1, UK = 4; };
struct CfgL { static constexpr int BQ = 128, TQ = 8, BR = 128, TR = 8, DKMAX = 16, MINB = 1, UK = 4; };

// Corpus element storage: float32, float16 bits, int8.
template <typename T> __device__ __forceinline__ void widen_store(const uint4& x, float* dst);
template <> __device__ __forceinline__ void widen_store<float>(const uint4& x, float* dst) {
  *reinterpret_cast<float4*>(dst) =
      make_float4(__uint_as_float(x.x), __uint_as_float(x.y), __uint_as_float(x.z), __uint_as_float(x.w));
}
__device__ __forceinline__ float2 h2f(uint32_t w) {
  return make_float2(__half2float(__ushort_as_half(static_cast<unsigned short>(w & 0xFFFFu))),
                     __half2float(__ushort_as_half(static_cast<unsigned short>(w >> 16))));
}
template <> __device__ __forceinline__ void widen_store<uint16_t>(const uint4& x, float* dst) {
  const float2 a = h2f(x.x), b = h2f(x.y), c = h2f(x.z), e = h2f(x.w);
  reinterpret_cast<float4*>(dst)[0] = make_float4(a.x, a.y, b.x, b.y);
  reinterpret_cast<float4*>(dst)[1] = make_float4(c.x, c.y, e.x, e.y);
}
__device__ __forceinline__ float4 i8x4(uint32_t w) {
  return make_float4(static_cast<float>(static_cast<int8_t>(w & 0xFF)),
                     static_cast<float>(static_cast<int8_t>((w >> 8) & 0xFF)),
                     static_cast<float>(static_cast<int8_t>((w >> 16) & 0xFF)),
                     static_cast<float>(static_cast<int8_t>(w >> 24)));
}
template <> __device__ __forceinline__ void widen_store<int8_t>(const uint4& x, float* dst) {
  float4* o = reinterpret_cast<float4*>(dst);
  o[0] = i8x4(x.x);
  o[1] = i8x4(x.y);
  o[2] = i8x4(x.z);
  o[3] = i8x4(x.w);
}

// 16 bytes of a row starting at element j0 (elements at or past d read as zero).
template <typename T>
__device__ __forceinline__ uint4 load16(const T* row, int64_t j0, int64_t d, bool vec_ok) {
  constexpr int VE = 16 / static_cast<int>(sizeof(T));
  if (vec_ok && j0 + VE <= d) return __ldg(reinterpret_cast<const uint4*>(row + j0));
  union {
    uint4 v;
    T e[VE];
  } u;
  u.v = make_uint4(0, 0, 0, 0);
#pragma unroll
  for (int e = 0; e < VE; ++e)
    if (j0 + e < d) u.e[e] = row[j0 + e];
  return u.v;
}

struct ScanArgs {
  const float* queries;  // the group's first query
  const void* corpus;
  const float* scale;    // [N] or null
  const uint8_t* mask;   // [N] or null
  const float* qm;       // the group's per-query factors (1/|q| for cosine), null: all 1
  int64_t qn, d, N, rows_per_split, cap, kk_s, L, S;
  uint64_t* buf;         // [qn][S][cap]
  uint64_t* R;           // [qn][L], L = S * kk_s
  bool cosine, vec_c, vec_q;
};

template <int BQ>
struct ScanSmem {
  int cnt[BQ];
  uint64_t thr[BQ];
  float qms[BQ];
  int hist[256];
  int bin, above, bincnt, wpos;
};

// Keeps the `keep` best keys of list[0, n) (n > keep), in place and unordered; sets the list's
// count and its threshold (every dropped key is below it, every kept key >= it). Block-wide.
template <int BQ>
__device__ void compact(uint64_t* list, int n, int keep, int ql, ScanSmem<BQ>& sm) {
  const int tid = threadIdx.x, lane = tid & 31;
  uint64_t prefix = 0, mask = 0;
  int need = keep;
  for (int shift = 56; shift >= 0; shift -= 8) {
    sm.hist[tid] = 0;  // kThreads == 256 bins
    __syncthreads();
    for (int i = tid; i < n; i += kThreads) {
      const uint64_t u = list[i];
      if ((u & mask) == prefix) atomicAdd(&sm.hist[(u >> shift) & 255], 1);
    }
    __syncthreads();
    if (tid < 32) {  // lane l owns bins 255-8l .. 248-8l, scanned from the top
      int h[8], sum = 0;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        h[t] = sm.hist[255 - 8 * lane - t];
        sum += h[t];
      }
      int incl = sum;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += y;
      }
      int run = incl - sum;
      if (run < need && need <= incl) {
#pragma unroll
        for (int t = 0; t < 8; ++t) {
          if (run + h[t] >= need) {
            sm.bin = 255 - 8 * lane - t;
            sm.above = run;
            sm.bincnt = h[t];
            break;
          }
          run += h[t];
        }
      }
    }
    __syncthreads();
    need -= sm.above;
    prefix |= static_cast<uint64_t>(sm.bin) << shift;
    mask |= 0xFFull << shift;
    const bool done = sm.bincnt == need;
    __syncthreads();  // sm.bin/above/bincnt are rewritten by the next digit
    if (done) break;
  }
  // Keep u >= prefix (exactly `keep` keys). Chunked so that a write never lands on a key that
  // has not been read yet: chunk c's keys go below (kept keys before chunk c) + chunk size.
  if (tid == 0) sm.wpos = 0;
  __syncthreads();
  for (int base = 0; base < n; base += 4 * kThreads) {
    uint64_t v[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const int i = base + t * kThreads + tid;
      v[t] = i < n ? list[i] : 0;
    }
    __syncthreads();
#pragma unroll
    for (int t = 0; t < 4; ++t)
      if (v[t] != 0 && v[t] >= prefix) list[atomicAdd(&sm.wpos, 1)] = v[t];
    __syncthreads();
  }
  if (tid == 0) {
    sm.cnt[ql] = sm.wpos;
    sm.thr[ql] = prefix;
  }
  __syncthreads();
}

// Row factor: 1 / |row| for cosine (0 for a zero row), else the row's scale (int8) or 1.
__device__ __forceinline__ float cosine_row_factor(float ss) { return ss > 0.f ? __fdiv_rn(1.f, __fsqrt_rn(ss)) : 0.f; }

// Scores a (query, row) pair as the CPU does, (dot * qmul) * rowmul, and appends its key to the
// query's list when it beats the threshold key `th`. NaN scores are never returned.
__device__ __forceinline__ void offer(float dot, float qmul, float rowmul, int64_t row, uint64_t th, uint64_t* list,
                                      int* cnt) {
  const float s = __fmul_rn(__fmul_rn(dot, qmul), rowmul);
  if (s != s) return;
  const uint64_t key = pack_key(s, static_cast<uint32_t>(row));
  if (key > th) list[atomicAdd(cnt, 1)] = key;
}

// The end of a split: the list's best kk_s keys (compacted first if needed), 0-padded, to out.
template <int BQ>
__device__ void flush_list(uint64_t* list, int ql, int64_t kk_s, uint64_t* out, ScanSmem<BQ>& sm) {
  if (sm.cnt[ql] > kk_s) compact<BQ>(list, sm.cnt[ql], static_cast<int>(kk_s), ql, sm);
  const int n = sm.cnt[ql];
  for (int64_t i = threadIdx.x; i < kk_s; i += kThreads) out[i] = i < n ? list[i] : 0;
}

template <class C, typename T>
__global__ void __launch_bounds__(kThreads, C::MINB) topk_scan_kernel(const ScanArgs a) {
  constexpr int BQ = C::BQ, TQ = C::TQ, BR = C::BR, TR = C::TR;
  constexpr int DK = C::DKMAX < 64 / static_cast<int>(sizeof(T)) ? C::DKMAX : 64 / static_cast<int>(sizeof(T));
  constexpr int NTR = BR / TR, NTQ = BQ / TQ;
  static_assert(NTR * NTQ == kThreads, "thread tile must cover the block");
  constexpr int VE = 16 / static_cast<int>(sizeof(T));          // corpus elements per 16 bytes
  constexpr int VPR = DK / VE;                                   // 16-byte vectors per row chunk
  constexpr int NV = BR * VPR;                                   // corpus vectors per chunk
  constexpr int NL = (NV + kThreads - 1) / kThreads;
  constexpr int QV = BQ * DK / 4;                                // query vectors per chunk
  constexpr int NLQ = (QV + kThreads - 1) / kThreads;

  __shared__ __align__(16) float Cs[BR][DK + 4];
  __shared__ __align__(16) float Qs[BQ][DK + 4];
  __shared__ ScanSmem<BQ> sm;

  const int tid = threadIdx.x;
  const int tr = tid % NTR, tq = tid / NTR;
  const int64_t qbase = static_cast<int64_t>(blockIdx.x) * BQ;
  const int nq = a.qn - qbase < BQ ? static_cast<int>(a.qn - qbase) : BQ;
  const int64_t split = blockIdx.y;
  const int64_t row_begin = split * a.rows_per_split;
  const int64_t row_end = a.N < row_begin + a.rows_per_split ? a.N : row_begin + a.rows_per_split;
  const int64_t d = a.d;
  const T* corpus = static_cast<const T*>(a.corpus);
  const int trigger = static_cast<int>(a.cap - BR);

  for (int i = tid; i < BQ; i += kThreads) {
    sm.cnt[i] = 0;
    sm.thr[i] = 0;
    sm.qms[i] = i >= nq ? 0.f : a.qm != nullptr ? a.qm[qbase + i] : 1.f;
  }
  auto list_of = [&](int ql) { return a.buf + ((qbase + ql) * a.S + split) * a.cap; };

  const int64_t nd = (d + DK - 1) / DK;
  const int64_t ntiles = (row_end - row_begin + BR - 1) / BR;

  uint4 pc[NL], pq[NLQ];
  auto load_chunk = [&](int64_t tile, int64_t dc) {
    const int64_t d0 = dc * DK;
    const int64_t r0 = row_begin + tile * BR;
#pragma unroll
    for (int i = 0; i < NL; ++i) {
      const int v = tid + i * kThreads;
      const int64_t grow = r0 + v / VPR;
      const int64_t j0 = d0 + (v % VPR) * VE;
      pc[i] = (NV % kThreads == 0 || v < NV) && grow < row_end && j0 < d ? load16<T>(corpus + grow * d, j0, d, a.vec_c) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int i = 0; i < NLQ; ++i) {
      const int v = tid + i * kThreads;
      const int ql = v / (DK / 4);
      const int64_t j0 = d0 + (v % (DK / 4)) * 4;
      pq[i] = v < QV && ql < nq && j0 < d ? load16<float>(a.queries + (qbase + ql) * d, j0, d, a.vec_q)
                                          : make_uint4(0, 0, 0, 0);
    }
  };
  auto store_chunk = [&]() {
#pragma unroll
    for (int i = 0; i < NL; ++i) {
      const int v = tid + i * kThreads;
      if (NV % kThreads == 0 || v < NV) widen_store<T>(pc[i], &Cs[v / VPR][(v % VPR) * VE]);
    }
#pragma unroll
    for (int i = 0; i < NLQ; ++i) {
      const int v = tid + i * kThreads;
      if (v < QV) widen_store<float>(pq[i], &Qs[v / (DK / 4)][(v % (DK / 4)) * 4]);
    }
  };

  float acc[TQ][TR], ss[TR];
  // ---- selection for a tile: threshold test, append survivors, compact lists that could overflow
  auto select_tile = [&](int64_t tile) {
    const int64_t r0 = row_begin + tile * BR;
    uint64_t th[TQ];
#pragma unroll
    for (int j = 0; j < TQ; ++j) th[j] = sm.thr[tq + j * NTQ];
#pragma unroll
    for (int i = 0; i < TR; ++i) {
      const int64_t row = r0 + tr + i * NTR;
      const bool rv = row < row_end && (a.mask == nullptr || a.mask[row] != 0);
      float rm = 1.f;
      if (a.cosine) rm = cosine_row_factor(ss[i]);
      else if (a.scale != nullptr && rv) rm = a.scale[row];
#pragma unroll
      for (int j = 0; j < TQ; ++j) {
        const int ql = tq + j * NTQ;
        if (rv && ql < nq) offer(acc[j][i], sm.qms[ql], rm, row, th[j], list_of(ql), &sm.cnt[ql]);
      }
    }
    __syncthreads();
    for (int ql = 0; ql < nq; ++ql)
      if (sm.cnt[ql] > trigger) compact<BQ>(list_of(ql), sm.cnt[ql], static_cast<int>(a.kk_s), ql, sm);
  };

  load_chunk(0, 0);
  for (int64_t tile = 0, dc = 0; tile < ntiles;) {  // chunks in order: tile by tile, d in steps of DK
    const bool last = dc == nd - 1;
    __syncthreads();  // everyone is done with the previous chunk (and with list updates)
    store_chunk();
    __syncthreads();
    // Prefetch the next chunk while this one is used; after a tile's last chunk the prefetch
    // waits until its selection is done, so the staging registers are free there.
    if (!last) load_chunk(tile, dc + 1);
    if (dc == 0) {
#pragma unroll
      for (int i = 0; i < TR; ++i) {
        ss[i] = 0.f;
#pragma unroll
        for (int j = 0; j < TQ; ++j) acc[j][i] = 0.f;
      }
    }
#pragma unroll C::UK
    for (int kk = 0; kk < DK; kk += 4) {
      float4 cv[TR];
#pragma unroll
      for (int i = 0; i < TR; ++i) cv[i] = *reinterpret_cast<const float4*>(&Cs[tr + i * NTR][kk]);
      if (a.cosine) {
#pragma unroll
        for (int i = 0; i < TR; ++i) {
          ss[i] = fmaf(cv[i].x, cv[i].x, ss[i]);
          ss[i] = fmaf(cv[i].y, cv[i].y, ss[i]);
          ss[i] = fmaf(cv[i].z, cv[i].z, ss[i]);
          ss[i] = fmaf(cv[i].w, cv[i].w, ss[i]);
        }
      }
#pragma unroll
      for (int j = 0; j < TQ; ++j) {
        const float4 qv = *reinterpret_cast<const float4*>(&Qs[tq + j * NTQ][kk]);
#pragma unroll
        for (int i = 0; i < TR; ++i) {
          acc[j][i] = fmaf(cv[i].x, qv.x, acc[j][i]);
          acc[j][i] = fmaf(cv[i].y, qv.y, acc[j][i]);
          acc[j][i] = fmaf(cv[i].z, qv.z, acc[j][i]);
          acc[j][i] = fmaf(cv[i].w, qv.w, acc[j][i]);
        }
      }
    }
    if (!last) {
      ++dc;
      continue;
    }
    select_tile(tile);
    dc = 0;
    if (++tile < ntiles) load_chunk(tile, 0);
  }

  // ---- this split's best kk_s per query, 0-padded, into R
  __syncthreads();
  for (int ql = 0; ql < nq; ++ql) flush_list<BQ>(list_of(ql), ql, a.kk_s, a.R + (qbase + ql) * a.L + split * a.kk_s, sm);
}

// ---------------------------------------------------------------------------- Q = 1 stream
// One query: nothing to reuse across rows, so no shared-memory staging of the corpus. Each row
// is read straight from HBM by a group of G lanes (16 bytes per lane per load, consecutive
// lanes on consecutive bytes), the dot product summed per lane in element order and then over
// the group by xor shuffles (every lane of a group ends with the same sum, and a row's score
// does not depend on where it sits, so duplicated rows tie exactly). G = 8/16/32 is picked so
// that a row is <= 4 loads per lane; each lane keeps 2 rows x 4 loads in flight (128 bytes), i.e.
// 32 KB per block, with 3 blocks per SM ~96 KB per SM: far more than the ~20 KB per SM that
// Little's law asks for at ~3.3 TB/s (H100) and ~700 ns of latency. int8 is widened with a
// byte-permute + one float subtract (exact for -128..127), not I2F (16/clk/SM would bind).
// An L2 prefetch of each warp's next rows made float32 8% slower and int8 no faster (H200).
// Selection as in the tiled kernel, per window of kStreamWindow rows: the threshold is read once
// per window, survivors are appended, and the list is compacted at the window's barrier.
constexpr int kStreamTPL = 4;     // loads per lane per row chunk
constexpr int kStreamU = 2;       // rows per group in flight
constexpr int kStreamWindow = 256;  // rows per block between barriers (== CfgS::BR)

__device__ __forceinline__ float i8_to_f(uint32_t xb, uint32_t sel) {
  // xb: 4 int8 with their sign bits flipped (x + 128 as unsigned bytes); the float 2^23 + u
  // minus 2^23 + 128 is exactly x.
  return __uint_as_float(__byte_perm(xb, 0x4B000000u, sel)) - 8388736.f;
}

template <typename T>
__device__ __forceinline__ void dot16(const uint4& x, const float* q, float& acc, float& ss, bool cosine) {
  float c[16 / sizeof(T) < 4 ? 4 : 16 / sizeof(T)];
  if constexpr (sizeof(T) == 4) {
    c[0] = __uint_as_float(x.x), c[1] = __uint_as_float(x.y), c[2] = __uint_as_float(x.z), c[3] = __uint_as_float(x.w);
  } else if constexpr (sizeof(T) == 2) {
    const uint32_t w[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = h2f(w[i]);
      c[2 * i] = f.x, c[2 * i + 1] = f.y;
    }
  } else {
    const uint32_t w[4] = {x.x ^ 0x80808080u, x.y ^ 0x80808080u, x.z ^ 0x80808080u, x.w ^ 0x80808080u};
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int b = 0; b < 4; ++b) c[4 * i + b] = i8_to_f(w[i], 0x7540u + b);
  }
  constexpr int VE = 16 / static_cast<int>(sizeof(T));
#pragma unroll
  for (int e = 0; e < VE; e += 4) {
    const float4 qv = *reinterpret_cast<const float4*>(q + e);
    acc = fmaf(c[e], qv.x, acc);
    acc = fmaf(c[e + 1], qv.y, acc);
    acc = fmaf(c[e + 2], qv.z, acc);
    acc = fmaf(c[e + 3], qv.w, acc);
    if (cosine) {
      ss = fmaf(c[e], c[e], ss);
      ss = fmaf(c[e + 1], c[e + 1], ss);
      ss = fmaf(c[e + 2], c[e + 2], ss);
      ss = fmaf(c[e + 3], c[e + 3], ss);
    }
  }
}

// Lanes per row for rows of nvec 16-byte vectors: the fewest (8, 16 or 32) that cover a row in
// kStreamTPL loads each; 8 at least so that a warp step (32 / G rows x kStreamU) fits in a window.
int stream_group(int64_t nvec) {
  int g = 8;
  while (g < 32 && g * kStreamTPL < nvec) g *= 2;
  return g;
}

template <typename T>
__global__ void __launch_bounds__(kThreads, 3) topk_stream_kernel(const ScanArgs a, int G) {
  extern __shared__ __align__(16) float qs[];  // the query, d floats
  __shared__ ScanSmem<1> sm;
  constexpr int VE = 16 / static_cast<int>(sizeof(T));
  constexpr int kWarps = kThreads / 32;
  constexpr int kWarpRows = kStreamWindow / kWarps;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int gl = lane & (G - 1), grp = lane / G, rpw = 32 / G;
  const int64_t d = a.d;
  const int nv = static_cast<int>(d / VE);  // 16-byte vectors per row (d <= 8192)
  const int64_t split = blockIdx.y;
  const int64_t row_begin = split * a.rows_per_split;
  const int64_t row_end = a.N < row_begin + a.rows_per_split ? a.N : row_begin + a.rows_per_split;
  const T* corpus = static_cast<const T*>(a.corpus);
  uint64_t* list = a.buf + split * a.cap;
  const int trigger = static_cast<int>(a.cap - kStreamWindow);

  for (int64_t j = tid; j < d; j += kThreads) qs[j] = a.queries[j];
  if (tid == 0) {
    sm.cnt[0] = 0;
    sm.thr[0] = 0;
    sm.qms[0] = a.qm != nullptr ? a.qm[0] : 1.f;
  }
  __syncthreads();
  const float qm = sm.qms[0];

  for (int64_t win = row_begin; win < row_end; win += kStreamWindow) {
    const uint64_t th = sm.thr[0];
    for (int r0 = 0; r0 < kWarpRows; r0 += rpw * kStreamU) {
      int64_t row[kStreamU];
      float acc[kStreamU], ss[kStreamU];
#pragma unroll
      for (int u = 0; u < kStreamU; ++u) {
        row[u] = win + warp * kWarpRows + r0 + u * rpw + grp;
        acc[u] = 0.f;
        ss[u] = 0.f;
      }
      const uint4* rp[kStreamU];
      float rs[kStreamU];  // the row's scale (int8) and mask: loaded with the row, not after it
      bool ok[kStreamU];
#pragma unroll
      for (int u = 0; u < kStreamU; ++u) {
        const bool in = row[u] < row_end;
        rp[u] = in ? reinterpret_cast<const uint4*>(corpus + row[u] * d) : nullptr;
        rs[u] = in && a.scale != nullptr && gl == 0 ? __ldg(a.scale + row[u]) : 1.f;
        ok[u] = in && (a.mask == nullptr || gl != 0 || __ldg(a.mask + row[u]) != 0);
      }
      for (int c0 = gl; c0 < nv; c0 += G * kStreamTPL) {
        uint4 x[kStreamU][kStreamTPL];
#pragma unroll
        for (int u = 0; u < kStreamU; ++u)
#pragma unroll
          for (int t = 0; t < kStreamTPL; ++t) {
            const int v = c0 + t * G;
            x[u][t] = rp[u] != nullptr && v < nv ? __ldg(rp[u] + v) : make_uint4(0, 0, 0, 0);
          }
#pragma unroll
        for (int u = 0; u < kStreamU; ++u)
#pragma unroll
          for (int t = 0; t < kStreamTPL; ++t) {
            const int v = c0 + t * G;
            if (v < nv) dot16<T>(x[u][t], qs + v * VE, acc[u], ss[u], a.cosine);
          }
      }
#pragma unroll
      for (int u = 0; u < kStreamU; ++u)
        for (int o = G >> 1; o > 0; o >>= 1) {
          acc[u] += __shfl_xor_sync(0xffffffffu, acc[u], o);
          if (a.cosine) ss[u] += __shfl_xor_sync(0xffffffffu, ss[u], o);
        }
      if (gl == 0) {
#pragma unroll
        for (int u = 0; u < kStreamU; ++u)
          if (ok[u]) offer(acc[u], qm, a.cosine ? cosine_row_factor(ss[u]) : rs[u], row[u], th, list, &sm.cnt[0]);
      }
    }
    __syncthreads();
    const int cnt = sm.cnt[0];
    __syncthreads();  // everyone has read cnt before the first appends of the next window
    if (cnt > trigger) compact<1>(list, cnt, static_cast<int>(a.kk_s), 0, sm);
  }
  __syncthreads();
  flush_list<1>(list, 0, a.kk_s, a.R + split * a.kk_s, sm);
}

// Per query: qm = 1/|q| (cosine, float64 sum in order as on the CPU) or 1; qq = |q|^2 (float64).
__global__ void topk_prep_kernel(const float* q, int64_t Q, int64_t d, bool cosine, float* qm, double* qq) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= Q) return;
  const float* p = q + i * d;
  double s = 0.0;
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {  // the loads of 8 elements first: the add chain is the only serial part
    float x[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) x[e] = p[j + e];
#pragma unroll
    for (int e = 0; e < 8; ++e) s = __dadd_rn(s, __dmul_rn(x[e], x[e]));
  }
  for (; j < d; ++j) s = __dadd_rn(s, __dmul_rn(p[j], p[j]));
  qq[i] = s;
  qm[i] = cosine ? (s > 0.0 ? static_cast<float>(__ddiv_rn(1.0, __dsqrt_rn(s))) : 0.f) : 1.f;
}

__global__ void topk_offsets_kernel(int* off, int64_t n, int64_t len) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i <= n) off[i] = static_cast<int>(i * len);
}

// int8: re-score the first kk2 keys of each sorted segment with the float32 query against the
// exact int8 row in float64, in csrc/cpu/topk.cpp's order (rescore_int8), and re-pack them.
__global__ void topk_rescore_kernel(const uint64_t* in, int64_t L, uint64_t* out, int64_t kk2, int64_t qn,
                                    const float* queries, const double* qq, const int8_t* corpus,
                                    const float* scale, int64_t d, bool cosine) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= qn * kk2) return;
  const int64_t q = t / kk2, i = t - q * kk2;
  const uint64_t u = in[q * L + i];
  if (u == 0) {
    out[t] = 0;
    return;
  }
  float s0;
  int64_t id;
  unpack_key(u, &s0, &id);
  const float* qp = queries + q * d;
  const int8_t* c = corpus + id * d;
  double dot = 0.0, cc = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double cj = static_cast<double>(c[j]);
    dot = __dadd_rn(dot, __dmul_rn(static_cast<double>(qp[j]), cj));
    cc = __dadd_rn(cc, __dmul_rn(cj, cj));
  }
  float s;
  if (!cosine) s = static_cast<float>(__dmul_rn(dot, static_cast<double>(scale[id])));
  else s = cc > 0.0 && qq[q] > 0.0 ? static_cast<float>(__ddiv_rn(dot, __dmul_rn(__dsqrt_rn(qq[q]), __dsqrt_rn(cc)))) : 0.f;
  out[t] = s != s ? 0 : pack_key(s, static_cast<uint32_t>(id));
}

// Phase 2 when the keys wanted per segment fit one block (m <= kSelectMax): the best m keys of
// in[seg * len, + len) sorted descending into out[seg * len, + m), 0-padded; `in` is compacted in
// place first when len > m (the same radix select as the scan). One block per segment and one
// launch, where cub's segmented radix sort takes a launch per 64-bit key pass (~10): for Q = 1,
// k = 10 that is ~4K keys, a few microseconds of work behind tens of microseconds of launches.
constexpr int kSelectMax = 2048;

__global__ void __launch_bounds__(kThreads) topk_select_sorted_kernel(uint64_t* in, int64_t len, int m,
                                                                       uint64_t* out) {
  __shared__ ScanSmem<1> sm;
  __shared__ uint64_t keys[kSelectMax];
  const int tid = threadIdx.x;
  uint64_t* seg = in + static_cast<int64_t>(blockIdx.x) * len;
  int n = static_cast<int>(len);
  if (len > m) {
    compact<1>(seg, n, m, 0, sm);
    n = sm.cnt[0];
  }
  int P = 1;
  while (P < m) P <<= 1;
  for (int i = tid; i < P; i += kThreads) keys[i] = i < n ? seg[i] : 0;
  __syncthreads();
  for (int size = 2; size <= P; size <<= 1) {  // bitonic network, descending
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = tid; i < P / 2; i += kThreads) {
        const int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
        const uint64_t x = keys[lo], y = keys[hi];
        if ((x < y) == ((lo & size) == 0)) {
          keys[lo] = y;
          keys[hi] = x;
        }
      }
      __syncthreads();
    }
  }
  uint64_t* o = out + static_cast<int64_t>(blockIdx.x) * len;
  for (int i = tid; i < m; i += kThreads) o[i] = keys[i];
}

__global__ void topk_decode_kernel(const uint64_t* keys, int64_t seglen, int64_t qn, int64_t k, float* scores,
                                   int64_t* ids) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= qn * k) return;
  const int64_t q = t / k, i = t - q * k;
  unpack_key(i < seglen ? keys[q * seglen + i] : 0, &scores[t], &ids[t]);
}

// ---------------------------------------------------------------------------- plan
struct Plan {
  int cfg = 0;  // 0 S, 1 M, 2 L, 3 the Q = 1 stream kernel (0 when the corpus is misaligned)
  int64_t BQ = 0, BR = 0, S = 0, rows_per_split = 0, kk = 0, kk_s = 0, kk2 = 0, cap = 0, L = 0, QG = 0;
  size_t off_qm = 0, off_qq = 0, off_offs = 0, off_buf = 0, off_r = 0, off_r2 = 0, off_temp = 0, temp = 0;
  size_t total = 0;
};

size_t align256(size_t x) { return (x + 255) & ~static_cast<size_t>(255); }
int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Phase-2 sort: a few long segments (Q = 1 with a large k) go through the device-wide radix sort
// one segment at a time; otherwise one segmented radix sort (a block per segment). cub's
// DeviceSegmentedSort would suit many short segments better but its kernels spill for 64-bit keys.
constexpr int64_t kLongSegment = 1 << 16;
constexpr int64_t kFewSegments = 8;

bool sort_per_segment(int64_t len, int64_t segs) { return len >= kLongSegment && segs <= kFewSegments; }

size_t sort_temp_bytes(int64_t len, int64_t segs) {
  size_t bytes = 0;
  cudaError_t e;
  if (sort_per_segment(len, segs)) {
    e = cub::DeviceRadixSort::SortKeysDescending(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                                 static_cast<uint64_t*>(nullptr), static_cast<int>(len), 0, 64,
                                                 static_cast<cudaStream_t>(nullptr));
  } else {
    e = cub::DeviceSegmentedRadixSort::SortKeysDescending(
        nullptr, bytes, static_cast<const uint64_t*>(nullptr), static_cast<uint64_t*>(nullptr),
        static_cast<int>(len * segs), static_cast<int>(segs), static_cast<const int*>(nullptr),
        static_cast<const int*>(nullptr), 0, 64, static_cast<cudaStream_t>(nullptr));
  }
  if (e != cudaSuccess) throw std::runtime_error(std::string("topk: cub temp-size query failed: ") + cudaGetErrorString(e));
  return bytes;
}

int sm_count() {
  int dev = 0, n = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error("topk: cannot query the current CUDA device");
  }
  return n;
}

void check_sizes(int64_t Q, int64_t N, int64_t d, int64_t k, int ctype) {
  if (Q < 0 || N < 0) throw std::invalid_argument("queries/corpus: negative dimension");
  if (d < 1) throw std::invalid_argument("corpus: the row length d must be >= 1");
  if (k < 1) throw std::invalid_argument("k: expected >= 1, got " + std::to_string(k));
  if (k > (1LL << 24)) throw std::invalid_argument("k: the CUDA kernel supports k <= 16777216, got " + std::to_string(k));
  if (N > INT_MAX) throw std::invalid_argument("corpus: the CUDA kernel supports at most 2^31-1 rows");
  if (d > (1LL << 24)) throw std::invalid_argument("corpus: rows longer than 16777216 elements");
  if (ctype < 0 || ctype > 2) throw std::invalid_argument("corpus: ctype must be 0 (float32), 1 (float16) or 2 (int8)");
  if (ctype == 2 && d > 131072) throw std::invalid_argument("corpus: int8 rows longer than 131072");
}

// The stream kernel reads whole 16-byte vectors of each row and keeps the query in shared memory.
bool stream_fits(int64_t d, int ctype) {
  const int64_t esize = ctype == 0 ? 4 : ctype == 1 ? 2 : 1;
  return (d * esize) % 16 == 0 && d <= 8192;
}

Plan make_plan(int64_t Q, int64_t N, int64_t d, int64_t k, int ctype, int64_t max_ws) {
  check_sizes(Q, N, d, k, ctype);
  Plan p;
  p.cfg = Q == 1 && stream_fits(d, ctype) ? 3 : Q <= CfgS::BQ ? 0 : Q <= CfgM::BQ ? 1 : 2;
  p.BQ = p.cfg == 3 ? 1 : p.cfg == 0 ? CfgS::BQ : p.cfg == 1 ? CfgM::BQ : CfgL::BQ;
  p.BR = p.cfg == 3 ? kStreamWindow : p.cfg == 0 ? CfgS::BR : p.cfg == 1 ? CfgM::BR : CfgL::BR;
  const int64_t bps = p.cfg == 3 ? 3 : p.cfg == 0 ? 2 : 1;  // resident blocks per SM (registers)
  const int64_t waves = p.cfg == 3 ? 1 : 2;  // equal splits of a stream all finish together
  p.kk = ctype == 2 ? k + std::min<int64_t>(k + 16, N) : k;
  p.off_qm = 0;
  p.off_qq = align256(p.off_qm + sizeof(float) * std::max<int64_t>(Q, 1));
  size_t fixed = align256(p.off_qq + sizeof(double) * std::max<int64_t>(Q, 1));
  if (Q == 0 || N == 0) {
    p.total = fixed;
    return p;
  }
  const int64_t qtiles = cdiv(Q, p.BQ);
  const int64_t qpad = qtiles * p.BQ;
  auto set_split = [&](int64_t s) {
    p.rows_per_split = cdiv(cdiv(N, s), p.BR) * p.BR;
    p.S = cdiv(N, p.rows_per_split);
    p.kk_s = std::min(p.kk, p.rows_per_split);
    // Room for max(kk, BR) survivors past the kk kept, plus the tile (window) in flight: a list
    // is compacted once more than kk + max(kk, BR) keys are in it (trigger = cap - BR). Without
    // the extra BR, k < BR compacted after every tile with a single survivor (Q = 256, k = 100:
    // up to a block-wide radix select per query per 128-row tile).
    p.cap = p.kk_s + std::max(p.kk_s, p.BR) + p.BR;
    p.L = p.S * p.kk_s;
  };
  auto per_query = [&]() { return static_cast<double>(p.S) * (p.cap + 2 * p.kk_s) * 8.0; };
  // ~2 waves of blocks, but splits of at least 2 kk rows once there is one block per SM (a split
  // shorter than kk keeps every row it sees).
  const int64_t smc = sm_count();
  int64_t s0 = std::max<int64_t>(1, cdiv(waves * smc * bps, qtiles));
  s0 = std::min(s0, std::max(smc, N / (2 * p.kk)));
  set_split(std::max<int64_t>(1, std::min(cdiv(N, p.BR), s0)));
  while (p.S > 1 && qpad * per_query() > static_cast<double>(max_ws)) set_split(cdiv(p.S, 2));
  p.QG = qpad;
  if (p.QG * per_query() > static_cast<double>(max_ws))
    p.QG = std::max(p.BQ, static_cast<int64_t>(max_ws / per_query()) / p.BQ * p.BQ);
  if (p.BQ * p.L > INT_MAX) throw std::invalid_argument("k: too large for the CUDA kernel at this corpus size");
  p.QG = std::min(p.QG, INT_MAX / p.L / p.BQ * p.BQ);
  p.QG = std::min(p.QG, Q);  // a group is a multiple of BQ queries, or all of them
  p.kk2 = std::min(p.kk, p.L);
  p.off_offs = fixed;
  p.off_buf = align256(p.off_offs + sizeof(int) * (p.QG + 1));
  p.off_r = align256(p.off_buf + sizeof(uint64_t) * p.QG * p.S * p.cap);
  p.off_r2 = align256(p.off_r + sizeof(uint64_t) * p.QG * p.L);
  p.off_temp = align256(p.off_r2 + sizeof(uint64_t) * p.QG * p.L);
  for (const int64_t segs : {p.QG, Q - (Q - 1) / p.QG * p.QG}) {  // full groups and the last one
    p.temp = std::max(p.temp, sort_temp_bytes(p.L, segs));
    if (ctype == 2) p.temp = std::max(p.temp, sort_temp_bytes(p.kk2, segs));
  }
  p.total = p.off_temp + align256(p.temp);
  return p;
}

template <class C, typename T>
void launch_scan(const ScanArgs& a, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(cdiv(a.qn, C::BQ)), static_cast<unsigned>(a.S));
  topk_scan_kernel<C, T><<<grid, kThreads, 0, s>>>(a);
}

template <class C>
void launch_scan_typed(int ctype, const ScanArgs& a, cudaStream_t s) {
  switch (ctype) {
    case 0: launch_scan<C, float>(a, s); break;
    case 1: launch_scan<C, uint16_t>(a, s); break;
    default: launch_scan<C, int8_t>(a, s); break;
  }
}

template <typename T>
void launch_stream_typed(const ScanArgs& a, cudaStream_t s) {
  const int G = stream_group(a.d / (16 / static_cast<int64_t>(sizeof(T))));
  topk_stream_kernel<T><<<dim3(1, static_cast<unsigned>(a.S)), kThreads, a.d * sizeof(float), s>>>(a, G);
}

void launch_stream(int ctype, const ScanArgs& a, cudaStream_t s) {
  switch (ctype) {
    case 0: launch_stream_typed<float>(a, s); break;
    case 1: launch_stream_typed<uint16_t>(a, s); break;
    default: launch_stream_typed<int8_t>(a, s); break;
  }
}

// Sorts qn segments of `len` keys each (descending) from `in` to `out`.
void sort_segments(void* temp, size_t temp_bytes, const uint64_t* in, uint64_t* out, int64_t len, int64_t segs,
                   const int* off, cudaStream_t s) {
  cudaError_t e = cudaSuccess;
  if (sort_per_segment(len, segs)) {
    for (int64_t q = 0; q < segs && e == cudaSuccess; ++q)
      e = cub::DeviceRadixSort::SortKeysDescending(temp, temp_bytes, in + q * len, out + q * len,
                                                   static_cast<int>(len), 0, 64, s);
  } else {
    e = cub::DeviceSegmentedRadixSort::SortKeysDescending(temp, temp_bytes, in, out, static_cast<int>(len * segs),
                                                          static_cast<int>(segs), off, off + 1, 0, 64, s);
  }
  if (e != cudaSuccess) throw std::runtime_error(std::string("topk: segment sort failed: ") + cudaGetErrorString(e));
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(std::max<int64_t>(1, cdiv(n, kThreads))); }

// The first m keys of each of segs segments of `len` keys, sorted descending, from `in` to `out`
// (same layout); `in` may be overwritten.
void top_sorted(void* temp, size_t temp_bytes, uint64_t* in, uint64_t* out, int64_t len, int64_t segs, int64_t m,
                int* off, cudaStream_t s) {
  if (m <= kSelectMax) {
    topk_select_sorted_kernel<<<static_cast<unsigned>(segs), kThreads, 0, s>>>(in, len, static_cast<int>(m), out);
    check_launch("topk_select_sorted");
    return;
  }
  topk_offsets_kernel<<<blocks_for(segs + 1), kThreads, 0, s>>>(off, segs, len);
  check_launch("topk_offsets");
  sort_segments(temp, temp_bytes, in, out, len, segs, off, s);
}

}  // namespace

int64_t topk_workspace_bytes(int64_t Q, int64_t N, int64_t d, int64_t k, int ctype, int64_t max_workspace) {
  return static_cast<int64_t>(make_plan(Q, N, d, k, ctype, max_workspace).total);
}

void topk_launch(uintptr_t queries, int64_t Q, int64_t d, uintptr_t corpus, int64_t N, int ctype, uintptr_t scale,
                 uintptr_t mask, bool cosine, int64_t k, uintptr_t out_scores, uintptr_t out_ids,
                 uintptr_t workspace, int64_t workspace_bytes, int64_t max_workspace, uintptr_t stream) {
  const Plan p = make_plan(Q, N, d, k, ctype, max_workspace);
  if (Q == 0) return;
  if (queries == 0 || out_scores == 0 || out_ids == 0) throw std::invalid_argument("queries/out: null device pointer");
  if (N > 0 && corpus == 0) throw std::invalid_argument("corpus: null device pointer");
  if (ctype == 2 && !cosine && scale == 0) throw std::invalid_argument("corpus_scale: required for an int8 corpus");
  if (workspace == 0 || workspace_bytes < static_cast<int64_t>(p.total))
    throw std::invalid_argument("workspace: need " + std::to_string(p.total) + " bytes, got " +
                                std::to_string(workspace_bytes));
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  char* ws = reinterpret_cast<char*>(workspace);
  float* qm = reinterpret_cast<float*>(ws + p.off_qm);
  double* qq = reinterpret_cast<double*>(ws + p.off_qq);
  const float* qp = reinterpret_cast<const float*>(queries);
  float* os = reinterpret_cast<float*>(out_scores);
  int64_t* oi = reinterpret_cast<int64_t*>(out_ids);
  if (N == 0) {
    topk_decode_kernel<<<blocks_for(Q * k), kThreads, 0, s>>>(nullptr, 0, Q, k, os, oi);
    check_launch("topk_decode");
    return;
  }
  const bool prep = cosine || ctype == 2;  // 1/|q| for cosine, |q|^2 for the int8 re-scoring
  if (prep) {
    topk_prep_kernel<<<blocks_for(Q), kThreads, 0, s>>>(qp, Q, d, cosine, qm, qq);
    check_launch("topk_prep");
  }
  int* off = reinterpret_cast<int*>(ws + p.off_offs);
  uint64_t* R = reinterpret_cast<uint64_t*>(ws + p.off_r);
  uint64_t* R2 = reinterpret_cast<uint64_t*>(ws + p.off_r2);
  void* temp = ws + p.off_temp;
  const size_t esize = ctype == 0 ? 4 : ctype == 1 ? 2 : 1;
  ScanArgs a{};
  a.corpus = reinterpret_cast<const void*>(corpus);
  a.scale = cosine ? nullptr : reinterpret_cast<const float*>(scale);
  a.mask = reinterpret_cast<const uint8_t*>(mask);
  a.d = d;
  a.N = N;
  a.rows_per_split = p.rows_per_split;
  a.cap = p.cap;
  a.kk_s = p.kk_s;
  a.L = p.L;
  a.S = p.S;
  a.buf = reinterpret_cast<uint64_t*>(ws + p.off_buf);
  a.R = R;
  a.cosine = cosine;
  a.vec_c = (d * static_cast<int64_t>(esize)) % 16 == 0 && corpus % 16 == 0;
  a.vec_q = d % 4 == 0 && queries % 16 == 0;
  for (int64_t q0 = 0; q0 < Q; q0 += p.QG) {
    const int64_t qn = std::min(p.QG, Q - q0);
    a.queries = qp + q0 * d;
    a.qm = prep ? qm + q0 : nullptr;
    a.qn = qn;
    switch (p.cfg) {
      case 3:
        if (corpus % 16 == 0) {
          launch_stream(ctype, a, s);
          break;
        }
        [[fallthrough]];  // same plan (BR, splits), the tiled kernel loads any alignment
      case 0: launch_scan_typed<CfgS>(ctype, a, s); break;
      case 1: launch_scan_typed<CfgM>(ctype, a, s); break;
      default: launch_scan_typed<CfgL>(ctype, a, s); break;
    }
    check_launch("topk_scan");
    top_sorted(temp, p.temp, R, R2, p.L, qn, ctype == 2 ? p.kk2 : std::min(k, p.L), off, s);
    const uint64_t* keys = R2;
    int64_t seglen = p.L;
    if (ctype == 2) {
      topk_rescore_kernel<<<blocks_for(qn * p.kk2), kThreads, 0, s>>>(
          R2, p.L, R, p.kk2, qn, a.queries, qq + q0, reinterpret_cast<const int8_t*>(corpus),
          reinterpret_cast<const float*>(scale), d, cosine);
      check_launch("topk_rescore");
      top_sorted(temp, p.temp, R, R2, p.kk2, qn, p.kk2, off, s);
      seglen = p.kk2;
    }
    topk_decode_kernel<<<blocks_for(qn * k), kThreads, 0, s>>>(keys, seglen, qn, k, os + q0 * k, oi + q0 * k);
    check_launch("topk_decode");
  }
}

}  // namespace cuda
}  // namespace infercore
