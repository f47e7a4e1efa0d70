// Operations on a per-query top-k candidate list (TopkList in topk.h). Included inside an
// anonymous namespace by every topk translation unit, after <algorithm> and topk.h: the
// comparator type is then local to the unit, so the std::nth_element / std::sort instantiations
// compiled with AVX-512 flags can never be picked by the linker for the AVX2 or scalar paths.
//
// The list is an unsorted array of capacity 2k. A candidate is appended when its score is >= thr
// (the k-th best score seen so far, -inf until the list first fills); when the array is full,
// nth_element keeps the k best and thr rises. Amortised O(1) per accepted candidate, and once
// thr has risen most candidates are rejected by one compare without touching the array.

// The total order every backend uses: higher score first, ties to the lower id.
struct TopkBetter {
  bool operator()(const TopkEntry& a, const TopkEntry& b) const {
    return a.score > b.score || (a.score == b.score && a.id < b.id);
  }
};

static inline void topk_compact(TopkList& L) {
  std::nth_element(L.data, L.data + (L.k - 1), L.data + L.n, TopkBetter{});
  L.n = L.k;
  L.thr = L.data[L.k - 1].score;
}

// Caller has already tested score >= L.thr (NaN scores fail that test and never enter).
static inline void topk_push(TopkList& L, float score, int64_t id) {
  L.data[L.n].score = score;
  L.data[L.n].id = id;
  if (++L.n == L.cap) topk_compact(L);
}
