// Binding for the fused top-k search (CPU). ops/search.py normalises arguments; these checks
// make the native entry safe on its own (shapes, dtypes, contiguity, id bounds, finite queries).
#include "../cpu/topk.h"
#include "../cpu/topk_rescore.h"

#include <limits>

#include "common.h"

namespace infercore {
namespace {

CorpusType corpus_type(const py::array& c) {
  const char kind = c.dtype().kind();
  if (kind == 'f' && c.itemsize() == 4) return CorpusType::kFloat32;
  if (kind == 'f' && c.itemsize() == 2) return CorpusType::kFloat16;
  if (kind == 'i' && c.itemsize() == 1) return CorpusType::kInt8;
  fail_type("corpus: expected dtype float32, float16 or int8, got " + std::string(py::str(c.dtype())));
}

void check_queries(const py::array& queries) {
  check_array(queries, "queries", 2, 4, false);
  IC_CHECK_TYPE(queries.dtype().kind() == 'f', "queries: expected float32");
}

// Allocates the (scores float32, ids int64) [Q, k] outputs into a.out_scores / a.out_ids and runs
// fn(a) without the GIL. Args: TopkArgs or RescoreArgs.
template <class Args>
py::tuple run_with_outputs(Args& a, int64_t Q, int64_t k, void (*fn)(const Args&)) {
  py::array_t<float> scores({Q, k});
  py::array_t<int64_t> ids({Q, k});
  a.out_scores = scores.mutable_data();
  a.out_ids = ids.mutable_data();
  {
    py::gil_scoped_release nogil;
    fn(a);
  }
  return py::make_tuple(scores, ids);
}

py::tuple topk(const py::array& queries, const py::array& corpus, int64_t k, const py::object& corpus_scale,
               const py::object& mask, const py::object& ids, bool cosine) {
  check_queries(queries);
  check_array(corpus, "corpus", 2, static_cast<int>(corpus.itemsize()), false);
  TopkArgs a;
  a.ctype = corpus_type(corpus);
  a.Q = queries.shape(0);
  a.d = queries.shape(1);
  a.N = corpus.shape(0);
  IC_CHECK_VALUE(corpus.shape(1) == a.d, "queries: expected rows of length " + std::to_string(corpus.shape(1)) +
                                             " (corpus dim), got " + std::to_string(a.d));
  IC_CHECK_VALUE(k >= 1, "k: expected >= 1, got " + std::to_string(k));
  a.queries = static_cast<const float*>(queries.data());
  a.corpus = corpus.data();
  a.k = k;
  a.cosine = cosine;
  py::array scale_arr, mask_arr, ids_arr;  // keep references alive while the kernel runs
  if (!corpus_scale.is_none()) {
    scale_arr = corpus_scale.cast<py::array>();
    check_array(scale_arr, "corpus_scale", 1, 4, false);
    IC_CHECK_TYPE(scale_arr.dtype().kind() == 'f', "corpus_scale: expected float32");
    IC_CHECK_VALUE(scale_arr.shape(0) == a.N, "corpus_scale: expected shape (" + std::to_string(a.N) + ",), got " +
                                                  shape_str(scale_arr));
    IC_CHECK_VALUE(a.ctype == CorpusType::kInt8, "corpus_scale: only valid with an int8 corpus");
    a.corpus_scale = static_cast<const float*>(scale_arr.data());
  }
  if (!mask.is_none()) {
    mask_arr = mask.cast<py::array>();
    check_array(mask_arr, "allowed", 1, 1, false);
    IC_CHECK_TYPE(mask_arr.dtype().kind() == 'b' || mask_arr.dtype().kind() == 'u', "allowed: expected a bool mask");
    IC_CHECK_VALUE(mask_arr.shape(0) == a.N, "allowed: mask of shape " + shape_str(mask_arr) + " for a corpus of " +
                                                 std::to_string(a.N) + " rows");
    a.mask = static_cast<const uint8_t*>(mask_arr.data());
  }
  if (!ids.is_none()) {
    ids_arr = ids.cast<py::array>();
    check_array(ids_arr, "allowed", 1, 8, false);
    IC_CHECK_TYPE(ids_arr.dtype().kind() == 'i', "allowed: expected int64 ids");
    a.ids = static_cast<const int64_t*>(ids_arr.data());
    a.n_ids = ids_arr.shape(0);
  }
  return run_with_outputs(a, a.Q, k, topk_forward);
}

py::tuple topk_rescore_py(const py::array& queries, const py::array& cand, const py::array& rows, int64_t k,
                          bool cosine) {
  check_queries(queries);
  check_array(cand, "cand", 2, 8, false);
  IC_CHECK_TYPE(cand.dtype().kind() == 'i', "cand: expected int64 ids");
  IC_CHECK_TYPE(rows.dtype().kind() == 'f' && (rows.itemsize() == 4 || rows.itemsize() == 2),
                "refine: expected dtype float32 or float16, got " + std::string(py::str(rows.dtype())));
  check_array(rows, "refine", 2, static_cast<int>(rows.itemsize()), false);
  IC_CHECK_VALUE(cand.shape(0) == queries.shape(0), "cand: expected " + std::to_string(queries.shape(0)) +
                                                        " rows (one per query), got shape " + shape_str(cand));
  IC_CHECK_VALUE(rows.shape(1) == queries.shape(1), "refine: expected rows of length " +
                                                        std::to_string(queries.shape(1)) + ", got shape " +
                                                        shape_str(rows));
  IC_CHECK_VALUE(k >= 1, "k: expected >= 1, got " + std::to_string(k));
  RescoreArgs a;
  a.queries = static_cast<const float*>(queries.data());
  a.Q = queries.shape(0);
  a.d = queries.shape(1);
  a.rows = rows.data();
  a.rows_f16 = rows.itemsize() == 2;
  a.N = rows.shape(0);
  a.cand = static_cast<const int64_t*>(cand.data());
  a.m = cand.shape(1);
  a.k = k;
  a.cosine = cosine;
  return run_with_outputs(a, a.Q, k, topk_rescore);
}

}  // namespace

void register_topk(py::module_& m) {
  m.def("topk_rescore", &topk_rescore_py, py::arg("queries"), py::arg("cand"), py::arg("refine"), py::arg("k"),
        py::arg("cosine") = false,
        "Re-rank each query's candidate ids (-1 = none) by their exact score on `refine` (float64 sums) -> "
        "(scores float32 [Q,k], ids int64 [Q,k]).");
  m.def("topk", &topk, py::arg("queries"), py::arg("corpus"), py::arg("k"), py::arg("corpus_scale") = py::none(),
        py::arg("mask") = py::none(), py::arg("ids") = py::none(), py::arg("cosine") = false,
        "Fused top-k inner product / cosine search -> (scores float32 [Q,k], ids int64 [Q,k]).");
}

}  // namespace infercore
