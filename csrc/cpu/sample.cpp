// Token sampling (sample.h): the scalar instantiation of the whole-vocabulary passes and the
// driver that applies temperature, top-k, top-p and min-p and walks the inverse CDF.
//
// The spec is engine/sampler.py's float64 `filtered_probs` + searchsorted: tokens ordered by
// (logit descending, id ascending), p = exp(x / t - x0 / t) over the top-k, top-p keeps the
// shortest prefix whose normalised mass reaches top_p, min-p keeps p >= min_p * p0, and the
// token is the first whose cumulative kept mass exceeds u times the kept total.
//
// Only the head of that order can decide, so the vocabulary is never sorted. One pass finds the
// max m. The driver then tries nested bands x >= tau_b = m - C_b t (C = 4, 8, 12, 16, 24, 32,
// then every token): it collects the band's ids, orders them by a 64-bit key (logit key, id)
// and walks them with float64 p = exp(x / t - m / t), sorting and computing p only as far as
// the walks go.
// When the answer could lie below the band (the top-p or sampled mass reaching past it, min-p
// small enough to admit tokens outside it, fewer tokens than top_k) the next band is tried; so
// the bands only decide how much is sorted, never the result. The total mass, needed by top-p
// and by an untruncated draw, is one more pass of float32 exponentials added in float64 (~1e-7
// relative from the spec's float64, as in the numpy fast path this replaces); with top-k it is
// the float64 sum over the k tokens, as in the spec. Napkin math in sample_impl.h.
#include "sample.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/errors.h"
#include "gelu_simd_scalar.h"

namespace infercore {
namespace {
#include "vec_exp_impl.h"

struct SampleScalarOps : GeluScalar {
  struct DSum {
    double s = 0.0;
  };
  static int nan_bits(F v) { return v != v; }
  static float hmax(F a) { return a; }
  static F ge(F v, F t) { return v >= t ? 1.f : 0.f; }  // false for NaN
  static unsigned bits(F mask) { return mask != 0.f; }
  static void add_d(DSum& a, F e) { a.s += static_cast<double>(e); }
  static double sum(const DSum& a) { return a.s; }
};

#include "sample_impl.h"

// The spec's order as one unsigned key: the high half grows as the logit falls (-inf last), the
// low half is the id, so ascending keys are (logit desc, id asc).
uint64_t order_key(float x, int32_t id) {
  if (x == 0.f) x = 0.f;  // -0 ties with +0, as in the spec's comparisons
  uint32_t b;
  std::memcpy(&b, &x, 4);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // ascending with x
  return (static_cast<uint64_t>(~b) << 32) | static_cast<uint32_t>(id);
}
int32_t key_id(uint64_t k) { return static_cast<int32_t>(k & 0xffffffffu); }

// Sorts k[0, n) ascending: LSD radix on the high (logit) half, 11/11/10-bit digits (a digit every
// key shares is skipped: keys near the max share their exponent bits), then equal high halves,
// rare and short, sorted by id. tmp: room for n. A flat 49152-token row sorts in a few passes
// over the keys instead of a comparison sort's ~16 levels.
void radix_sort_keys(uint64_t* k, int64_t n, uint64_t* tmp) {
  static constexpr int kShift[3] = {32, 43, 54};
  static constexpr uint64_t kMask[3] = {2047, 2047, 1023};
  uint64_t* src = k;
  uint64_t* dst = tmp;
  for (int pass = 0; pass < 3; ++pass) {
    const int sh = kShift[pass];
    const uint64_t mask = kMask[pass];
    uint32_t count[2048] = {};
    for (int64_t i = 0; i < n; ++i) ++count[(src[i] >> sh) & mask];
    if (count[(src[0] >> sh) & mask] == static_cast<uint32_t>(n)) continue;
    uint32_t sum = 0;
    for (uint32_t& c : count) {
      const uint32_t v = c;
      c = sum;
      sum += v;
    }
    for (int64_t i = 0; i < n; ++i) dst[count[(src[i] >> sh) & mask]++] = src[i];
    std::swap(src, dst);
  }
  if (src != k) std::memcpy(k, src, static_cast<size_t>(n) * sizeof(uint64_t));
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    while (j < n && (k[j] >> 32) == (k[i] >> 32)) ++j;
    if (j - i > 1) std::sort(k + i, k + j);
    i = j;
  }
}

// keys[0, n) in order up to a growing prefix, with p (float64) of the ordered ones on demand.
// A short walk selects and sorts chunk after chunk (nth_element + sort of 32, 64, ...); one that
// gets past kDeepWalk (a flat distribution, a wide top-p), or is known to go that deep (every
// p <= 1, so reaching mass M takes >= M tokens: expect_mass), radix-sorts the rest at once.
struct Walk {
  static constexpr int64_t kDeepWalk = 1024;
  uint64_t* keys;
  int64_t n;
  uint64_t* tmp;
  const float* logits;
  double t, z0;  // p = exp(x / t - z0), z0 = m / t: the spec's z - z[0]
  std::vector<double>& p;
  int64_t sorted = 0, chunk = 32, known = 0;
  double deep_from = 0.0;  // a lower bound on how far the walk goes
  void expect_mass(double mass) { deep_from = std::max(deep_from, mass); }
  double at(int64_t i) {
    if (i >= sorted) {
      if (sorted >= kDeepWalk || deep_from >= static_cast<double>(kDeepWalk)) {
        radix_sort_keys(keys + sorted, n - sorted, tmp);
        sorted = n;
      } else {
        const int64_t end = std::min(n, std::max(i + 1, sorted + chunk));
        if (end < n) std::nth_element(keys + sorted, keys + end, keys + n);
        std::sort(keys + sorted, keys + end);
        sorted = end;
        chunk *= 2;
      }
    }
    for (; known <= i; ++known) p[known] = std::exp(static_cast<double>(logits[key_id(keys[known])]) / t - z0);
    return p[i];
  }
  int32_t id(int64_t i) { return key_id(keys[i]); }  // after at(i)
};

// One band: the ordering keys of its tokens (every logit >= tau) and bound_tail = the largest p a
// token outside it can have; total_mass() gives the row's mass (computed once, on first use). Returns
// the token, or -1 when a token outside the band might be it.
template <class Total>
int64_t resolve(const SampleArgs& a, float m, uint64_t* keys, int64_t count, double bound_tail, Total total_mass,
                std::vector<double>& pbuf, uint64_t* tmp) {
  const int64_t V = a.vocab;
  const bool topk = a.top_k > 0 && a.top_k < V;
  // The kept set: the first lim tokens in order, plus the ones outside the band while `more`.
  int64_t lim = topk ? a.top_k : count;  // the caller guarantees count >= top_k
  bool more = !topk && count < V;
  if (topk && lim < count) std::nth_element(keys, keys + lim, keys + count);  // the exact top-k set
  pbuf.resize(static_cast<size_t>(lim));
  Walk w{keys, lim, tmp, a.logits, a.temperature, static_cast<double>(m) / a.temperature, pbuf};
  if (a.min_p > 0.0) {  // p falls along the order: the tokens passing min-p are a prefix
    int64_t n = 0;
    while (n < lim && w.at(n) >= a.min_p) ++n;  // p0 = 1 >= min_p, so n >= 1
    if (n == lim && more && bound_tail >= a.min_p) return -1;  // tokens outside may pass min-p too
    lim = n;
    more = false;
  }
  double total = 0.0;  // the spec's normaliser over the top-k set (or the whole row)
  if (topk) {
    for (int64_t i = 0; i < a.top_k; ++i) total += w.at(i);
  } else if (a.top_p < 1.0 || more) {
    total = total_mass();
  }
  if (a.top_p < 1.0) w.expect_mass(a.top_p * total);
  else if (more) w.expect_mass(a.u * total);
  double cum = 0.0;  // the kept mass so far, in the spec's order
  if (a.top_p < 1.0) {
    int64_t i = 0;
    for (; i < lim; ++i) {
      cum += w.at(i);
      if (cum / total >= a.top_p) break;
    }
    if (i < lim) {
      lim = i + 1;
      more = false;
    } else if (more) {
      return -1;  // the top-p set reaches past the band
    }  // else rounding left the cumulative just short: all of [0, lim) stays
  } else if (!more) {
    for (int64_t i = 0; i < lim; ++i) cum += w.at(i);
  }
  const double target = a.u * (more ? total : cum);
  double c = 0.0;
  for (int64_t i = 0; i < lim; ++i) {
    c += w.at(i);
    if (c > target) return w.id(i);
  }
  if (more) return -1;  // u falls in the mass outside the band
  return w.id(lim - 1);   // rounding: the spec clamps to its last kept token
}

struct Buffers {
  std::vector<int32_t> ids;
  std::vector<uint64_t> keys, tmp;
  std::vector<double> p;
};

// One set per thread, shared by sample_token and sample_logprobs, grown to the vocabulary.
Buffers& buffers(int64_t vocab) {
  thread_local Buffers buf;
  buf.ids.resize(static_cast<size_t>(vocab));
  buf.keys.resize(static_cast<size_t>(vocab));
  buf.tmp.resize(static_cast<size_t>(vocab));
  return buf;
}

struct Passes {
  SampleScanFn scan;
  SampleTotalFn total;
  SampleCollectFn collect;
};

// AVX-512 machines run the AVX2 passes too: passes over one cache-resident row gain little.
Passes pick_passes() {
  if (isa_level() != IsaLevel::kScalar) return {sample_scan_avx2, sample_total_avx2, sample_collect_avx2};
  return {sample_scan_scalar, sample_total_scalar, sample_collect_scalar};
}

// The band x >= tau of the row as ordering keys in buf.keys; returns how many.
int64_t band_keys(const Passes& pass, const float* logits, int64_t vocab, float tau, Buffers& buf) {
  const int64_t count = pass.collect(logits, vocab, tau, buf.ids.data());
  for (int64_t i = 0; i < count; ++i) buf.keys[i] = order_key(logits[buf.ids[i]], buf.ids[i]);
  return count;
}

// The row checks both entry points share, then its max (NaN raises).
SampleScan scan_row(const Passes& pass, const float* logits, int64_t vocab) {
  IC_CHECK_VALUE(vocab >= 1, "logits: expected at least one token, got an empty row");
  IC_CHECK_VALUE(vocab <= std::numeric_limits<int32_t>::max(), "logits: vocabulary too large (over 2^31 - 1)");
  IC_CHECK_VALUE(logits != nullptr, "logits: null data pointer");
  const SampleScan s = pass.scan(logits, vocab);
  IC_CHECK_VALUE(!s.nan, "logits: the model produced NaN");
  return s;
}

}  // namespace

SampleScan sample_scan_scalar(const float* x, int64_t n) { return sample_scan<SampleScalarOps>(x, n); }

double sample_total_scalar(const float* x, int64_t n, float m, float inv_t) {
  return sample_total<SampleScalarOps>(x, n, m, inv_t);
}

int64_t sample_collect_scalar(const float* x, int64_t n, float tau, int32_t* ids) {
  return sample_collect<SampleScalarOps>(x, n, tau, ids);
}

namespace {
std::string number_text(double v) {  // the messages' numbers: std::to_string prints 1e-311 as 0.000000
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}
}  // namespace

int64_t sample_token(const SampleArgs& a) {
  // 1 / t must be a finite float (t >= ~2.9e-39): the mass pass scales by it in float32, and
  // below that it overflowed (masked -inf tokens came out at t = 1e-311). SamplingParams samples
  // greedily below 1e-5 anyway.
  IC_CHECK_VALUE(std::isfinite(a.temperature) && a.temperature > 0.0 &&
                     1.0 / a.temperature <= static_cast<double>(std::numeric_limits<float>::max()),
                 "temperature: expected a finite number >= 2.9e-39 (1 / t a finite float32), got " +
                     number_text(a.temperature));
  IC_CHECK_VALUE(a.top_k >= 0, "top_k: expected >= 0 (0 = off), got " + std::to_string(a.top_k));
  IC_CHECK_VALUE(a.top_p > 0.0 && a.top_p <= 1.0,
                 "top_p: expected a number in (0, 1], got " + number_text(a.top_p));
  IC_CHECK_VALUE(a.min_p >= 0.0 && a.min_p <= 1.0,
                 "min_p: expected a number in [0, 1], got " + number_text(a.min_p));
  IC_CHECK_VALUE(a.u >= 0.0 && a.u < 1.0, "u: expected a uniform draw in [0, 1), got " + number_text(a.u));
  const Passes pass = pick_passes();
  const SampleScan s = scan_row(pass, a.logits, a.vocab);
  IC_CHECK_VALUE(s.max != std::numeric_limits<float>::infinity(), "logits: +inf logit; expected finite values or -inf");
  IC_CHECK_VALUE(s.max != -std::numeric_limits<float>::infinity(),
                 "logits: every token is -inf (masked out); nothing can be sampled");
  const double t = a.temperature;
  double total = -1.0;
  auto total_mass = [&] {
    if (total < 0.0) total = pass.total(a.logits, a.vocab, s.max, static_cast<float>(1.0 / t));
    return total;
  };
  Buffers& buf = buffers(a.vocab);
  for (const double c : {4.0, 8.0, 12.0, 16.0, 24.0, 32.0, std::numeric_limits<double>::infinity()}) {
    const float tau = std::isinf(c) ? -std::numeric_limits<float>::infinity() : static_cast<float>(s.max - c * t);
    const int64_t count = band_keys(pass, a.logits, a.vocab, tau, buf);
    if (a.top_k > 0 && a.top_k < a.vocab && count < a.top_k) continue;  // the top-k set reaches below tau
    // every logit below tau has p = exp(x / t - m / t) < exp((tau - m) / t)
    const double bound_tail = std::exp((static_cast<double>(tau) - s.max) / t);
    const int64_t token = resolve(a, s.max, buf.keys.data(), count, bound_tail, total_mass, buf.p, buf.tmp.data());
    if (token >= 0) return token;
  }
  fail_value("logits: sampling did not resolve (internal error)");  // the last tier keeps every token
}

bool sample_logprobs(const float* logits, int64_t vocab, int64_t n, float* max, double* log_total, int32_t* top) {
  const Passes pass = pick_passes();
  const SampleScan s = scan_row(pass, logits, vocab);
  IC_CHECK_VALUE(n >= 0 && n <= vocab, "n: expected 0 <= n <= the vocabulary size");
  *max = s.max;
  if (std::isinf(s.max)) return false;
  *log_total = std::log(pass.total(logits, vocab, s.max, 1.f));
  if (n == 0) return true;
  Buffers& buf = buffers(vocab);
  // the narrowest band x >= max - C holding n tokens (the last band holds them all)
  for (const float c : {4.f, 8.f, 16.f, 32.f, 64.f, std::numeric_limits<float>::infinity()}) {
    const int64_t count = band_keys(pass, logits, vocab, s.max - c, buf);
    if (count < n) continue;
    uint64_t* k = buf.keys.data();
    if (n < count) std::nth_element(k, k + n, k + count);
    std::sort(k, k + n);
    for (int64_t i = 0; i < n; ++i) top[i] = key_id(k[i]);
    return true;
  }
  return true;  // unreachable: the last band keeps every token
}

}  // namespace infercore
