// The top-k scan written once over a float vector type V (VecScalar / VecAvx2 / VecAvx512) and
// an int8 primitive set I8 (I8Scalar / I8Avx2 / I8Avx512 / I8Avx512Vnni). Included inside an
// anonymous namespace by each ISA translation unit, after <algorithm>, <cmath>, <type_traits>, topk.h,
// topk_buffer.h and the vector headers, so nothing here is shared between ISA levels.
//
// Napkin math, d = 384, N = 1M rows, 2 cores (Zen 3/4, ~30 GB/s DRAM read, 2 FMA ports/core):
//   Q = 1 float32: 1.5 GB read, 0.77 GFLOP -> 0.5 flop/byte: bound by DRAM bandwidth (~50 ms).
//     float16 reads 0.77 GB (~25 ms), int8 0.38 GB (~13 ms): again bandwidth-bound, so the kernel
//     only has to keep the load units streaming (R = 4 rows in flight per query).
//   Q = 256 float32: 197 GFLOP over the same 1.5 GB -> 128 flop/byte: compute-bound. Each corpus
//     block (~192 KiB, L2-resident) is read once from DRAM and reused by every query tile; a tile
//     of R rows x QT queries needs R + QT loads for R*QT FMAs (AVX2 4x2, AVX-512 4x4), which
//     keeps the FMA ports, not the loads, as the limit (~100-190 GFLOP/s peak on 2 cores).
//   That row-dot tile still loads R + QT vectors per R*QT FMAs and ends in horizontal sums; for
//   many queries (TopkWork::packed, every corpus dtype: int8 rows are widened, and the queries
//   stay float32) the block is first repacked into float32 panels of P = 2W
//   rows interleaved per dimension, and a GEMM-style tile (MQ queries broadcast x 2 vectors of
//   P rows) does 2*MQ FMAs per 2 loads + MQ broadcasts, with no horizontal sums (6x16 on AVX2,
//   8x32 on AVX-512). Packing costs one pass over the block per block, amortised over Q.
//   int8 with VNNI packs int8 panels instead (pack_i8): 64 byte products per vpdpbusd against 16
//   per FMA; Q = 256 x 200k x 384: 68 ms (~580 GOP/s, ~75% of 2 cores' vpdpbusd issue) against
//   247 ms for float32 rows.
//   Top-k: one compare per (row, query) against the query's threshold; after the first ~k rows
//     almost every candidate is rejected there, so selection costs ~nothing next to the dot.
// Every (row, query) score is computed with the same instruction sequence whatever the tile
// shape or thread split (row-dot: one accumulator, chunks in order, fixed horizontal sum, then
// the tail; packed: one lane summing j = 0..d-1 in order), so results do not depend on the
// number of threads and exact ties stay exact. The two kernels round differently, so the last
// bits of a score can depend on whether the call had few or many queries (topk.cpp picks).

template <CorpusType T>
constexpr int64_t elem_bytes() {
  return T == CorpusType::kFloat32 ? 4 : T == CorpusType::kFloat16 ? 2 : 1;
}

template <CorpusType T>
inline float corpus_elem(const char* row, int64_t j) {
  if constexpr (T == CorpusType::kFloat32) return reinterpret_cast<const float*>(row)[j];
  else if constexpr (T == CorpusType::kFloat16) return half_to_float(reinterpret_cast<const uint16_t*>(row)[j]);
  else return static_cast<float>(reinterpret_cast<const int8_t*>(row)[j]);
}

// f(std::integral_constant<int, nq>()) for a run-time 1 <= nq <= N: the kernels take the number
// of queries of a tile as a template argument.
template <int N, class F>
inline void with_query_count(int64_t nq, F&& f) {
  if constexpr (N >= 1) {
    if (nq == N) f(std::integral_constant<int, N>());
    else with_query_count<N - 1>(nq, f);
  }
}

template <class V, class I8, CorpusType T>
struct TopkKernel {
  static constexpr int R = 4;  // corpus rows per register tile
  // Queries per register tile: accumulators R*QT plus R corpus vectors must fit the register file.
  static constexpr int QT = T == CorpusType::kInt8 ? (I8::W >= 64 ? 4 : 1) : (V::W >= 16 ? 4 : 2);
  static constexpr DType kVecType = T == CorpusType::kFloat16 ? DType::kFloat16 : DType::kFloat32;

  // out[r][q] = <row r, query q> for float corpora.
  template <int NR, int NQ>
  static void dots(const char* const* rows, const TopkWork& w, int64_t qt0, float (*out)[NQ]) {
    const int64_t d = w.a->d;
    const float* qs[NQ];
    for (int q = 0; q < NQ; ++q) qs[q] = w.a->queries + (qt0 + q) * d;
    typename V::F acc[NR][NQ];
    for (int r = 0; r < NR; ++r)
      for (int q = 0; q < NQ; ++q) acc[r][q] = V::zero();
    int64_t j = 0;
    for (; j + V::W <= d; j += V::W) {
      typename V::F c[NR];
      for (int r = 0; r < NR; ++r) c[r] = V::template load<kVecType>(rows[r] + j * elem_bytes<T>());
      for (int q = 0; q < NQ; ++q) {
        const typename V::F qv = V::loadw(qs[q] + j);
        for (int r = 0; r < NR; ++r) acc[r][q] = V::fmadd(c[r], qv, acc[r][q]);
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int q = 0; q < NQ; ++q) {
        float s = V::hsum(acc[r][q]);
        for (int64_t t = j; t < d; ++t) s = V::fma_s(corpus_elem<T>(rows[r], t), qs[q][t], s);
        out[r][q] = s;
      }
  }

  // out[r][q] = <row r, quantised query q> for int8 corpora (exact int32, then float).
  // qbias[q] (biased form only): 128 * the sum of query q's first d / W * W bytes.
  template <int NR, int NQ>
  static void dots_i8(const char* const* rows, const TopkWork& w, int64_t qt0, const uint32_t* qbias,
                      float (*out)[NQ]) {
    const int64_t d = w.a->d;
    const int8_t* qs[NQ];
    for (int q = 0; q < NQ; ++q) qs[q] = w.q8 + (qt0 + q) * w.q8_stride;
    typename I8::I acc[NR][NQ];
    for (int r = 0; r < NR; ++r)
      for (int q = 0; q < NQ; ++q) acc[r][q] = I8::zero();
    int64_t j = 0;
    if constexpr (I8::kBiased) {
      // vpdpbusd takes the corpus byte as unsigned c + 128 (one xor, shared by the query tile)
      // and the query byte as it is: sum (c + 128) q - 128 sum q. int32 lanes wrap; the
      // difference is exact (|c q| sums stay below 2^31, see validate in topk.cpp).
      for (; j + I8::W <= d; j += I8::W) {
        typename I8::I c[NR];
        for (int r = 0; r < NR; ++r) c[r] = I8::to_unsigned(I8::load(reinterpret_cast<const int8_t*>(rows[r]) + j));
        for (int q = 0; q < NQ; ++q) {
          const typename I8::I qv = I8::load(qs[q] + j);
          for (int r = 0; r < NR; ++r) acc[r][q] = I8::dot(acc[r][q], c[r], qv);
        }
      }
      for (int r = 0; r < NR; ++r)
        for (int q = 0; q < NQ; ++q) {
          int32_t s = static_cast<int32_t>(static_cast<uint32_t>(I8::hsum(acc[r][q])) - qbias[q]);
          const int8_t* row = reinterpret_cast<const int8_t*>(rows[r]);
          for (int64_t t = j; t < d; ++t) s += int32_t(row[t]) * int32_t(qs[q][t]);
          out[r][q] = static_cast<float>(s);
        }
      return;
    }
    for (; j + I8::W <= d; j += I8::W) {
      typename I8::I c[NR], u[NR];
      for (int r = 0; r < NR; ++r) {
        c[r] = I8::load(reinterpret_cast<const int8_t*>(rows[r]) + j);
        u[r] = I8::absv(c[r]);
      }
      for (int q = 0; q < NQ; ++q) {
        const typename I8::I qv = I8::load(qs[q] + j);
        for (int r = 0; r < NR; ++r) acc[r][q] = I8::dot(acc[r][q], u[r], I8::signq(qv, c[r]));
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int q = 0; q < NQ; ++q) {
        int32_t s = I8::hsum(acc[r][q]);
        const int8_t* row = reinterpret_cast<const int8_t*>(rows[r]);
        for (int64_t t = j; t < d; ++t) s += int32_t(row[t]) * int32_t(qs[q][t]);
        out[r][q] = static_cast<float>(s);
      }
  }

  // Squared L2 norm of a corpus row (cosine). float rows accumulate in float32 lanes.
  static float self_dot(const char* row, int64_t d) {
    if constexpr (T == CorpusType::kInt8) {
      const int8_t* c = reinterpret_cast<const int8_t*>(row);
      int32_t s = 0;
      for (int64_t t = 0; t < d; ++t) s += int32_t(c[t]) * int32_t(c[t]);
      return static_cast<float>(s);
    } else {
      typename V::F acc = V::zero();
      int64_t j = 0;
      for (; j + V::W <= d; j += V::W) {
        const typename V::F c = V::template load<kVecType>(row + j * elem_bytes<T>());
        acc = V::fmadd(c, c, acc);
      }
      float s = V::hsum(acc);
      for (; j < d; ++j) {
        const float c = corpus_elem<T>(row, j);
        s = V::fma_s(c, c, s);
      }
      return s;
    }
  }

  // ---- packed (GEMM-like) kernel for float corpora and many queries
  static constexpr int P = 2 * V::W;                // rows per panel
  static constexpr int MQ = V::W >= 16 ? 8 : 6;     // queries per panel tile
  static_assert(P <= kTopkMaxPanel, "panel wider than the scratch allows");

  // panels[(i / P) * d * P + j * P + i % P] = element j of rows[i]; missing rows are zero.
  static void pack(const char* base, const int64_t* rows, int64_t nr, int64_t d, float* panels) {
    const int64_t rb = d * elem_bytes<T>();
    for (int64_t p0 = 0; p0 < nr; p0 += P) {
      float* pan = panels + (p0 / P) * d * P;
      int64_t j0 = 0;  // dimensions [0, j0) of every row of the panel are packed
      if constexpr (V::W == 16 || V::W == 8) {
        // Whole panels, W x W at a time: a transpose puts dimension j of W rows in one vector
        // (one store) instead of W scalar stores per row vector: the scalar scatter below made
        // a Q = 16 float32 scan over 1M x 384 take 204 ms on AVX-512, 132 with this. int8 rows
        // (levels without VNNI) are widened on the way.
        if (p0 + P <= nr) {
          for (; j0 + V::W <= d; j0 += V::W)
            for (int h = 0; h < P; h += V::W) {
              typename V::F v[V::W];
              for (int r = 0; r < V::W; ++r) {
                const char* src = base + rows[p0 + h + r] * rb + j0 * elem_bytes<T>();
                if constexpr (T == CorpusType::kInt8) v[r] = V::load_i8(reinterpret_cast<const int8_t*>(src));
                else v[r] = V::template load<kVecType>(src);
              }
              V::transpose_store(v, pan + j0 * P + h, P);
            }
        }
      }
      for (int r = 0; r < P; ++r) {
        if (p0 + r >= nr) {
          for (int64_t j = j0; j < d; ++j) pan[j * P + r] = 0.f;
          continue;
        }
        const char* row = base + rows[p0 + r] * rb;
        float tmp[V::W];
        int64_t j = j0;
        if constexpr (T != CorpusType::kInt8) {
          for (; j + V::W <= d; j += V::W) {
            V::template store<DType::kFloat32, false>(tmp, V::template load<kVecType>(row + j * elem_bytes<T>()));
            for (int t = 0; t < V::W; ++t) pan[(j + t) * P + r] = tmp[t];
          }
        }
        for (; j < d; ++j) pan[j * P + r] = corpus_elem<T>(row, j);
      }
    }
  }

  template <int NQ>
  static void panel_tile(const float* pan, int64_t d, const float* const* qs, float (*out)[P]) {
    typename V::F acc[NQ][2];
    for (int m = 0; m < NQ; ++m) acc[m][0] = acc[m][1] = V::zero();
    for (int64_t j = 0; j < d; ++j) {
      const typename V::F c0 = V::loadw(pan + j * P), c1 = V::loadw(pan + j * P + V::W);
      for (int m = 0; m < NQ; ++m) {
        const typename V::F qb = V::set1(qs[m][j]);
        acc[m][0] = V::fmadd(c0, qb, acc[m][0]);
        acc[m][1] = V::fmadd(c1, qb, acc[m][1]);
      }
    }
    for (int m = 0; m < NQ; ++m) {
      V::template store<DType::kFloat32, false>(out[m], acc[m][0]);
      V::template store<DType::kFloat32, false>(out[m] + V::W, acc[m][1]);
    }
  }

  template <int NQ>
  static void panel_queries(const TopkWork& w, const float* panels, const int64_t* rows, const float* rowmul,
                            int64_t nr, int64_t qt0, TopkList* lists) {
    const int64_t d = w.a->d;
    const float* qs[NQ];
    for (int m = 0; m < NQ; ++m) qs[m] = w.qf + (qt0 + m) * d;
    float out[NQ][P];
    for (int64_t p0 = 0; p0 < nr; p0 += P) {
      panel_tile<NQ>(panels + (p0 / P) * d * P, d, qs, out);
      const int np = static_cast<int>(std::min<int64_t>(P, nr - p0));
      for (int m = 0; m < NQ; ++m) {
        TopkList& L = lists[m];
        const float qm = w.qmul[qt0 + m];
        for (int r = 0; r < np; ++r) {
          const float s = out[m][r] * qm * rowmul[p0 + r];
          if (s >= L.thr) topk_push(L, s, rows[p0 + r]);
        }
      }
    }
  }

  // ---- packed int8 kernel (VNNI only: I8::kBiased), many queries
  // The float panels above would widen every int8 byte and run at the FMA rate (16 products per
  // instruction); vpdpbusd does 64. A block is packed into panels of P8 = 16 rows whose int32
  // lane r holds 4 consecutive bytes of row r as unsigned c + 128, and a tile of NQ quantised
  // queries x 2 panels keeps 2 NQ accumulators, each query's 4 bytes broadcast into the dot: per
  // 4 dimensions 2 loads + 2 NQ dots. The scores are the exact int32 sums of the row-dot kernel
  // (sum (c + 128) q - 128 sum q, the same float epilogue), so a query's shortlist does not
  // depend on how many queries came with it. Q = 256 x 384 dims: 256 x 96 dots per 16 rows.
  static constexpr int P8 = 16;   // rows per int8 panel: one vector of int32 lanes
  static constexpr int MQ8 = 8;   // queries per int8 tile (x 2 panels: 16 accumulators; 6-14 slower)

  // panels[(i / P8) * d4 * 64 + j * 64 + (i % P8) * 4 + b] = byte 4 j + b of rows[i] + 128 as u8
  // (d4 = ceil(d / 4)), in whole pairs of panels: bytes past d and rows past nr are packed as
  // zeros (the padded query bytes are zero, and those rows' scores are never read).
  static void pack_i8(const char* base, const int64_t* rows, int64_t nr, int64_t d, uint8_t* panels) {
    const int64_t d4 = (d + 3) / 4;
    for (int64_t p0 = 0; p0 < nr; p0 += 2 * P8)
      for (int64_t h0 = p0; h0 < p0 + 2 * P8; h0 += P8) {
        uint8_t* pan = panels + (h0 / P8) * d4 * 64;
        const int nvalid = static_cast<int>(std::clamp<int64_t>(nr - h0, 0, P8));
        const int8_t* rp[P8];
        for (int r = 0; r < P8; ++r)
          rp[r] = r < nvalid ? reinterpret_cast<const int8_t*>(base + rows[h0 + r] * d) : nullptr;
        int64_t j = 0;
        if (nvalid == P8)
          for (; 4 * j + 64 <= d; j += 16) I8::pack16x64(rp, 4 * j, pan + j * 64);
        for (; j < d4; ++j)
          for (int r = 0; r < P8; ++r)
            for (int b = 0; b < 4; ++b) {
              const int64_t t = 4 * j + b;
              const int8_t c = r < nvalid && t < d ? rp[r][t] : 0;
              pan[j * 64 + r * 4 + b] = static_cast<uint8_t>(c) ^ 0x80u;
            }
      }
  }

  // Scores each pair of panels (rows p0 .. p0 + 32 of the block) against NQ queries.
  template <int NQ>
  static void panel_queries_i8(const TopkWork& w, const uint8_t* panels, const int64_t* rows, const float* rowmul,
                               int64_t nr, int64_t qt0, TopkList* lists) {
    const int64_t d4 = (w.a->d + 3) / 4;
    const int8_t* qs[NQ];
    for (int m = 0; m < NQ; ++m) qs[m] = w.q8 + (qt0 + m) * w.q8_stride;
    alignas(64) float sc[P8];
    for (int64_t p0 = 0; p0 < nr; p0 += 2 * P8) {
      const uint8_t* pan0 = panels + (p0 / P8) * d4 * 64;
      const uint8_t* pan1 = pan0 + d4 * 64;
      typename I8::I acc[NQ][2];
      for (int m = 0; m < NQ; ++m) acc[m][0] = acc[m][1] = I8::zero();
      for (int64_t j = 0; j < d4; ++j) {
        const typename I8::I c0 = I8::load(reinterpret_cast<const int8_t*>(pan0 + j * 64));
        const typename I8::I c1 = I8::load(reinterpret_cast<const int8_t*>(pan1 + j * 64));
        for (int m = 0; m < NQ; ++m) {
          const typename I8::I qb = I8::bcast4(qs[m] + 4 * j);
          acc[m][0] = I8::dot(acc[m][0], c0, qb);
          acc[m][1] = I8::dot(acc[m][1], c1, qb);
        }
      }
      for (int h = 0; h < 2 && p0 + h * P8 < nr; ++h) {
        const int64_t r0 = p0 + h * P8;
        const int np = static_cast<int>(std::min<int64_t>(P8, nr - r0));
        const uint32_t valid = np == P8 ? 0xFFFFu : (1u << np) - 1u;
        for (int m = 0; m < NQ; ++m) {
          TopkList& L = lists[m];
          uint32_t hit = I8::scores16(acc[m][h], w.q8_bias[qt0 + m], w.qmul[qt0 + m], rowmul + r0, L.thr, sc) & valid;
          while (hit != 0) {
            const int r = __builtin_ctz(hit);
            hit &= hit - 1;
            if (sc[r] >= L.thr) topk_push(L, sc[r], rows[r0 + r]);  // thr may have risen
          }
        }
      }
    }
  }

  // ---- row-dot kernel
  // Scores rows[i0 .. i0+NR) against NQ queries and offers them to the lists.
  template <int NR, int NQ>
  static void tile(const TopkWork& w, const char* base, const int64_t* rows, const float* rowmul, int64_t i0,
                   int64_t qt0, const uint32_t* qbias, TopkList* lists) {
    const int64_t rb = w.a->d * elem_bytes<T>();
    const char* rp[NR];
    for (int r = 0; r < NR; ++r) rp[r] = base + rows[i0 + r] * rb;
    float out[NR][NQ];
    if constexpr (T == CorpusType::kInt8) dots_i8<NR, NQ>(rp, w, qt0, qbias, out);
    else dots<NR, NQ>(rp, w, qt0, out);
    for (int q = 0; q < NQ; ++q) {
      TopkList& L = lists[q];
      const float qm = w.qmul[qt0 + q];
      for (int r = 0; r < NR; ++r) {
        const float s = out[r][q] * qm * rowmul[i0 + r];
        if (s >= L.thr) topk_push(L, s, rows[i0 + r]);
      }
    }
  }

  template <int NQ>
  static void tile_rows(const TopkWork& w, const char* base, const int64_t* rows, const float* rowmul, int64_t nr,
                        int64_t qt0, TopkList* lists) {
    int64_t i = 0;
    uint32_t qbias[NQ] = {};
    if constexpr (T == CorpusType::kInt8 && I8::kBiased)  // over the vector part; dots_i8 adds the tail exactly
      for (int q = 0; q < NQ; ++q) qbias[q] = topk_q8_bias(w.q8 + (qt0 + q) * w.q8_stride, w.a->d / I8::W * I8::W);
    if constexpr (T == CorpusType::kInt8) {
      // int8 rows are consumed ~4x faster per byte than float32 rows, and the hardware
      // prefetcher alone left a core at ~10.5 GB/s against ~15 for float32. An L2 prefetch of
      // the corpus ~48 KiB past the current row (by position, so it runs across block ends):
      // Q = 1, 1M x 384, 2 threads 19.2 -> 17.3-18.0 ms (24-192 KiB measured the same within
      // noise, 384 KiB worse). float32 rows measured no gain from it, and L1 prefetches a few
      // rows ahead cost float32 up to 20%, so only int8 does it. With the one-dot c + 128 form
      // it is still worth 16.0-16.9 -> 14.5-14.9 ms (96 KiB the same, 24 KiB 0-4% slower).
      const int64_t rb = w.a->d, N = w.a->N, ahead = (48 << 10) / std::max<int64_t>(rb, 1);
      for (; i + R <= nr; i += R) {
        const int64_t pf = rows[i] + ahead;
        if (pf + R <= N)
          for (const char *p = base + pf * rb, *e = p + R * rb; p < e; p += 64) __builtin_prefetch(p, 0, 1);
        tile<R, NQ>(w, base, rows, rowmul, i, qt0, qbias, lists);
      }
    } else {
      for (; i + R <= nr; i += R) tile<R, NQ>(w, base, rows, rowmul, i, qt0, qbias, lists);
    }
    for (; i < nr; ++i) tile<1, NQ>(w, base, rows, rowmul, i, qt0, qbias, lists);
  }

  static void scan(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                   const TopkScratch& sc) {
    const TopkArgs& a = *w.a;
    const char* base = static_cast<const char*>(a.corpus);
    const int64_t rb = a.d * elem_bytes<T>();
    constexpr bool kPackedI8 = T == CorpusType::kInt8 && I8::kBiased;  // packed: the int8 panels
    for (int64_t b0 = p0; b0 < p1; b0 += w.block) {
      const int64_t b1 = std::min(p1, b0 + w.block);
      int64_t nr = 0;  // the block's candidate rows, ascending
      if (a.ids != nullptr) {
        for (int64_t p = b0; p < b1; ++p) sc.rows[nr++] = a.ids[p];
      } else if (a.mask != nullptr) {
        for (int64_t p = b0; p < b1; ++p)
          if (a.mask[p]) sc.rows[nr++] = p;
      } else {
        for (int64_t p = b0; p < b1; ++p) sc.rows[nr++] = p;
      }
      if (nr == 0) continue;
      // Row factors. Cosine: this pass pulls the block into L2 while taking its norms, so the
      // corpus still comes from DRAM once; zero rows get factor 0 (score 0).
      for (int64_t i = 0; i < nr; ++i) {
        if (a.cosine) {
          const float ss = self_dot(base + sc.rows[i] * rb, a.d);
          sc.rowmul[i] = ss > 0.f ? 1.f / std::sqrt(ss) : 0.f;
        } else {
          sc.rowmul[i] = a.corpus_scale != nullptr ? a.corpus_scale[sc.rows[i]] : 1.f;
        }
      }
      if constexpr (kPackedI8) {
        if (w.packed) {
          uint8_t* panels = reinterpret_cast<uint8_t*>(sc.panels);
          pack_i8(base, sc.rows, nr, a.d, panels);
          for (int64_t qt0 = q0; qt0 < q1; qt0 += MQ8) {
            const int64_t nq = std::min<int64_t>(MQ8, q1 - qt0);
            with_query_count<MQ8>(nq, [&](auto n) {
              panel_queries_i8<decltype(n)::value>(w, panels, sc.rows, sc.rowmul, nr, qt0, lists + (qt0 - q0));
            });
          }
          continue;
        }
      }
      if (w.packed) {
        pack(base, sc.rows, nr, a.d, sc.panels);
        for (int64_t qt0 = q0; qt0 < q1; qt0 += MQ) {
          const int64_t nq = std::min<int64_t>(MQ, q1 - qt0);
          with_query_count<MQ>(nq, [&](auto n) {
            panel_queries<decltype(n)::value>(w, sc.panels, sc.rows, sc.rowmul, nr, qt0, lists + (qt0 - q0));
          });
        }
        continue;
      }
      for (int64_t qt0 = q0; qt0 < q1; qt0 += QT) {
        const int64_t nq = std::min<int64_t>(QT, q1 - qt0);
        with_query_count<QT>(nq, [&](auto n) {
          tile_rows<decltype(n)::value>(w, base, sc.rows, sc.rowmul, nr, qt0, lists + (qt0 - q0));
        });
      }
    }
  }
};

template <class V, class I8>
void topk_scan_dispatch(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                        const TopkScratch& sc) {
  switch (w.a->ctype) {
    case CorpusType::kFloat32: TopkKernel<V, I8, CorpusType::kFloat32>::scan(w, q0, q1, p0, p1, lists, sc); break;
    case CorpusType::kFloat16: TopkKernel<V, I8, CorpusType::kFloat16>::scan(w, q0, q1, p0, p1, lists, sc); break;
    case CorpusType::kInt8: TopkKernel<V, I8, CorpusType::kInt8>::scan(w, q0, q1, p0, p1, lists, sc); break;
  }
}
