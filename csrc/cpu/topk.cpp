// Scalar instantiation of the top-k scan, and the dispatcher: validates, prepares the queries
// (int8 quantisation, cosine factors), splits (query group x corpus shard) tasks over the
// thread pool, then merges the shards' lists into the sorted, padded outputs.
#include "topk.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/dtype.h"
#include "../core/errors.h"
#include "../core/thread_pool.h"
#include "simd_i8_scalar.h"
#include "simd_scalar.h"

namespace infercore {
namespace {
#include "topk_buffer.h"
#include "topk_impl.h"

constexpr int64_t kBlockBytes = 192 << 10;     // corpus block: stays in L2 beside the queries
constexpr int64_t kShardRows = 4096;           // smallest corpus shard worth a task
constexpr int64_t kListBytes = 256ll << 20;    // bound on all candidate lists together
constexpr int64_t kPackedMinQ = 16;            // from here on the packed kernel wins
constexpr int64_t kPackedMinQInt8 = 8;         // VNNI's int8 panels: 1M x 384, Q = 8 28.4 vs 29.5 ms
constexpr int64_t kGroupBytes = 128 << 10;     // a query group's float32 rows: stays in L2 with a block
constexpr int64_t kExactFloatD = (1 << 24) / (128 * 127);  // int8 dots summed in float32 stay exact
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

TopkScanFn pick(IsaLevel level, CorpusType ctype) {
  switch (level) {
    case IsaLevel::kAvx512:
      return ctype == CorpusType::kInt8 && cpu_features().avx512_vnni ? topk_scan_avx512vnni : topk_scan_avx512;
    case IsaLevel::kAvx2: return topk_scan_avx2;
    default: return topk_scan_scalar;
  }
}

int64_t elem_size(CorpusType t) { return t == CorpusType::kFloat32 ? 4 : t == CorpusType::kFloat16 ? 2 : 1; }

void validate(const TopkArgs& a) {
  IC_CHECK_VALUE(a.Q >= 0 && a.N >= 0, "queries/corpus: negative dimension");
  IC_CHECK_VALUE(a.d >= 1, "corpus: the row length d must be >= 1");
  IC_CHECK_VALUE(a.k >= 1, "k: expected >= 1, got " + std::to_string(a.k));
  IC_CHECK_VALUE(a.Q == 0 || a.queries != nullptr, "queries: null data pointer");
  IC_CHECK_VALUE(a.N == 0 || a.corpus != nullptr, "corpus: null data pointer");
  IC_CHECK_VALUE(a.Q == 0 || (a.out_scores != nullptr && a.out_ids != nullptr), "out: null data pointer");
  IC_CHECK_VALUE(a.mask == nullptr || a.ids == nullptr, "allowed: give a mask or ids, not both");
  // int8: per-lane int32 sums stay exact while d * 128 * 127 < 2^31.
  IC_CHECK_VALUE(a.ctype != CorpusType::kInt8 || a.d <= 131072, "corpus: int8 rows longer than 131072");
  IC_CHECK_VALUE(a.ctype != CorpusType::kInt8 || a.cosine || a.corpus_scale != nullptr,
                 "corpus_scale: required for an int8 corpus");
  if (a.ids != nullptr) {  // bounds are checked before the kernel touches a row
    for (int64_t i = 0; i < a.n_ids; ++i) {
      IC_CHECK_VALUE(a.ids[i] >= 0 && a.ids[i] < a.N, "allowed: id " + std::to_string(a.ids[i]) +
                                                          " out of range [0, " + std::to_string(a.N) + ")");
      IC_CHECK_VALUE(i == 0 || a.ids[i] > a.ids[i - 1], "allowed: ids must be sorted and unique");
    }
  }
  for (int64_t i = 0; i < a.Q * a.d; ++i)
    IC_CHECK_VALUE(std::isfinite(a.queries[i]), "queries: NaN or Inf at flat index " + std::to_string(i));
}

// Symmetric per-row int8: q8 = round(q / s), s = max|q| / 127 (s = 0 for a zero row).
float quantize_query(const float* q, int64_t d, int8_t* out) {
  float amax = 0.f;
  for (int64_t j = 0; j < d; ++j) amax = std::max(amax, std::fabs(q[j]));
  const float s = amax / 127.f;
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  for (int64_t j = 0; j < d; ++j)
    out[j] = static_cast<int8_t>(std::max(-127.f, std::min(127.f, std::nearbyint(q[j] * inv))));
  return s;
}

float inv_norm(const float* q, int64_t d) {
  double ss = 0.0;
  for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(q[j]) * q[j];
  return ss > 0.0 ? static_cast<float>(1.0 / std::sqrt(ss)) : 0.f;
}

// Exact score of float32 query q against int8 row `id`, accumulated in double in a fixed order
// (the same on every ISA level). Inner product: times corpus_scale; cosine: over both norms.
float rescore_int8(const TopkArgs& a, int64_t q, int64_t id) {
  const float* qp = a.queries + q * a.d;
  const int8_t* c = static_cast<const int8_t*>(a.corpus) + id * a.d;
  double dot = 0.0, cc = 0.0, qq = 0.0;
  for (int64_t j = 0; j < a.d; ++j) {
    dot += static_cast<double>(qp[j]) * c[j];
    cc += static_cast<double>(c[j]) * c[j];
    qq += static_cast<double>(qp[j]) * qp[j];
  }
  if (!a.cosine) return static_cast<float>(dot * a.corpus_scale[id]);
  return cc > 0.0 && qq > 0.0 ? static_cast<float>(dot / (std::sqrt(qq) * std::sqrt(cc))) : 0.f;
}

}  // namespace

void topk_scan_scalar(const TopkWork& w, int64_t q0, int64_t q1, int64_t p0, int64_t p1, TopkList* lists,
                      const TopkScratch& sc) {
  topk_scan_dispatch<VecScalar, I8Scalar>(w, q0, q1, p0, p1, lists, sc);
}

void topk_forward(const TopkArgs& a) {
  validate(a);
  if (a.Q == 0) return;
  const int64_t npos = a.ids != nullptr ? a.n_ids : a.N;  // candidate positions before the mask
  const int64_t Q = a.Q, d = a.d, k_out = a.k;
  // int8: the scan (int8 queries) keeps a shortlist of up to 2k + 16, re-scored below with the
  // float32 query against the exact int8 row: returned scores carry no query rounding, and a
  // true top-k row is lost only if rounding pushes it below 2k + 16 others.
  const bool rescore = a.ctype == CorpusType::kInt8;
  const int64_t k = rescore ? k_out + std::min<int64_t>(k_out + 16, npos) : k_out;

  // int8 corpora are always scored against the int8-quantised queries with exact int32 sums, so
  // a query's shortlist is the same at every ISA level and whatever the number of queries. Many
  // queries: VNNI packs int8 panels (packed_i8); other levels widen rows into the float panels
  // and read q8 as floats, exact while d * 128 * 127 < 2^24 (kExactFloatD); longer rows there
  // take the row-dot kernel.
  const TopkScanFn scan = pick(isa_level(), a.ctype);
  const bool int8 = a.ctype == CorpusType::kInt8, vnni = scan == topk_scan_avx512vnni;
  const bool packed =
      Q >= (int8 && vnni ? kPackedMinQInt8 : kPackedMinQ) && !(int8 && !vnni && d > kExactFloatD);
  const bool packed_i8 = packed && int8 && vnni;
  const int64_t d4 = (d + 3) / 4;
  const int64_t q8_stride = packed_i8 ? d4 * 4 : d;  // the int8 panels read whole 4-byte words
  std::vector<float> qmul(Q, 1.f);
  std::vector<int8_t> q8(int8 ? Q * q8_stride : 0);
  std::vector<uint32_t> q8_bias(packed_i8 ? Q : 0);
  parallel_for(0, Q, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q) {
      const float* qp = a.queries + q * d;
      float m = 1.f;
      if (int8) m = quantize_query(qp, d, q8.data() + q * q8_stride);
      if (packed_i8) q8_bias[q] = topk_q8_bias(q8.data() + q * q8_stride, d);
      if (a.cosine) m *= inv_norm(qp, d);
      qmul[q] = m;
    }
  });

  // Tasks: S corpus shards x G query groups; each group reads the corpus once. Few queries
  // (Q = 1 included): G = 1 and the shards keep every thread busy, merged below. Many queries:
  // G grows so a group fits L2 (and so small corpora still give every thread work). S and G
  // depend on the thread count, the scores never do (see topk_impl.h).
  const int threads = num_threads();
  // Each block is swept once per query tile, so a group's queries and one block must share L2:
  // more queries than that are split into groups (each re-reads the corpus, cheap next to the
  // compute at that Q).
  int64_t G = (Q * d * 4 + kGroupBytes - 1) / kGroupBytes;
  // Every (shard, query) list fills and compacts on its own, so with groups already giving the
  // threads work, packed calls take only the shards that 2 tasks per thread need (Q = 256 x 1M
  // int8, 2 threads: k = 100 375 -> 315 ms, k = 400 550 -> 412; float32 and Q <= 64 unchanged).
  const int64_t s_want = packed ? (2 * threads + G - 1) / G : 4 * threads;
  int64_t S = std::max<int64_t>(1, std::min<int64_t>(s_want, npos / kShardRows));
  const int64_t kk_max = std::min(k, std::max<int64_t>(npos, 1));
  while (S > 1 && S * Q * (2 * kk_max + 1) * int64_t(sizeof(TopkEntry)) > kListBytes) S /= 2;
  if (S < 2 * threads) G = std::max(G, (2 * threads + S - 1) / S);
  G = std::max<int64_t>(1, std::min(G, (Q + 3) / 4));
  const int64_t group = ((Q + G - 1) / G + 3) / 4 * 4;  // queries per group, a multiple of 4
  G = (Q + group - 1) / group;

  // Lists: for shard s, query q at offset (s * Q + q); a shard of `len` positions keeps
  // min(k, len) and needs capacity 2*min(k, len), or len + 1 (never fills) when k >= len.
  std::vector<TopkList> lists(S * Q);
  std::vector<int64_t> offset(S + 1, 0);
  auto shard_begin = [&](int64_t s) { return npos * s / S; };
  for (int64_t s = 0; s < S; ++s) {
    const int64_t len = shard_begin(s + 1) - shard_begin(s);
    const int64_t kk = std::min(k, len);
    const int64_t cap = kk >= len ? len + 1 : 2 * kk;
    offset[s + 1] = offset[s] + cap * Q;
    for (int64_t q = 0; q < Q; ++q) {
      TopkList& L = lists[s * Q + q];
      L.k = kk;
      L.cap = cap;
      L.thr = kNegInf;
    }
  }
  std::unique_ptr<TopkEntry[]> entries(new TopkEntry[std::max<int64_t>(1, offset[S])]);
  for (int64_t s = 0; s < S; ++s)
    for (int64_t q = 0; q < Q; ++q) lists[s * Q + q].data = entries.get() + offset[s] + q * lists[s * Q + q].cap;

  std::vector<float> qf(packed && int8 && !packed_i8 ? Q * d : 0);
  for (size_t i = 0; i < qf.size(); ++i) qf[i] = q8[i];
  TopkWork w;
  w.a = &a;
  w.q8 = q8.empty() ? nullptr : q8.data();
  w.q8_stride = q8_stride;
  w.q8_bias = q8_bias.empty() ? nullptr : q8_bias.data();
  w.qf = qf.empty() ? a.queries : qf.data();
  w.qmul = qmul.data();
  w.packed = packed;
  if (packed_i8) {  // int8 panels: 4-byte words of 16 rows, in pairs (multiples of kTopkMaxPanel)
    w.block = std::max<int64_t>(1, kBlockBytes / (d4 * 4 * kTopkMaxPanel)) * kTopkMaxPanel;
  } else if (w.packed) {  // blocks of whole panels, sized by their float32 bytes
    w.block = std::max<int64_t>(1, kBlockBytes / (d * 4 * kTopkMaxPanel)) * kTopkMaxPanel;
  } else {
    w.block = std::max<int64_t>(16, std::min<int64_t>(8192, kBlockBytes / (d * elem_size(a.ctype))));
  }
  if (npos > 0) {
    run_tasks(S * G, [&](int64_t t) {
      const int64_t g = t / S, s = t % S;
      const int64_t q0 = g * group, q1 = std::min(Q, q0 + group);
      std::vector<int64_t> rows(w.block);
      std::vector<float> rowmul(w.block);
      // block is a multiple of every panel width; int8 panels hold d4 words of 4 bytes per row
      std::vector<float> panels(!w.packed ? 0 : packed_i8 ? w.block * d4 : w.block * d);
      const TopkScratch sc{rows.data(), rowmul.data(), panels.empty() ? nullptr : panels.data()};
      scan(w, q0, q1, shard_begin(s), shard_begin(s + 1), lists.data() + s * Q + q0, sc);
    });
  }

  // Merge: per query, the best k of all shards' lists under the (score desc, id asc) order.
  parallel_for(0, Q, 8, [&](int64_t lo, int64_t hi) {
    std::vector<TopkEntry> all;
    for (int64_t q = lo; q < hi; ++q) {
      all.clear();
      for (int64_t s = 0; s < S; ++s) {
        const TopkList& L = lists[s * Q + q];
        all.insert(all.end(), L.data, L.data + L.n);
      }
      int64_t m = std::min<int64_t>(k, all.size());
      std::partial_sort(all.begin(), all.begin() + m, all.end(), TopkBetter{});
      if (rescore) {
        all.resize(m);
        for (TopkEntry& e : all) e.score = rescore_int8(a, q, e.id);
        std::sort(all.begin(), all.end(), TopkBetter{});
        m = std::min(m, k_out);
      }
      float* os = a.out_scores + q * k_out;
      int64_t* oi = a.out_ids + q * k_out;
      for (int64_t i = 0; i < m; ++i) {
        os[i] = all[i].score;
        oi[i] = all[i].id;
      }
      for (int64_t i = m; i < k_out; ++i) {
        os[i] = kNegInf;
        oi[i] = -1;
      }
    }
  });
}

}  // namespace infercore
