// pybind11 bindings of the paged KV cache CUDA launchers (attention_launch.h). Arguments arrive
// as raw device addresses and sizes from ops/attention.py, which has validated shapes, dtypes,
// devices and the index values; the launchers check the sizes again and throw
// std::invalid_argument (-> ValueError) before launching. The GIL is released around launches.
//
// `cache` is a tuple (k, v, k_scales, v_scales, k_scale, v_scale, dtype_code, num_blocks,
// block_size, num_kv_heads, head_dim): see KvCacheDev.
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "attention_launch.h"

namespace py = pybind11;
using namespace infercore::cuda;

namespace {

KvCacheDev cache_from(const py::tuple& t) {
  if (t.size() != 11)
    throw std::invalid_argument("cache: expected (k, v, k_scales, v_scales, k_scale, v_scale, dtype, num_blocks, "
                                "block_size, num_kv_heads, head_dim)");
  KvCacheDev c;
  c.k = t[0].cast<uintptr_t>();
  c.v = t[1].cast<uintptr_t>();
  c.k_scales = t[2].cast<uintptr_t>();
  c.v_scales = t[3].cast<uintptr_t>();
  c.k_scale = t[4].cast<float>();
  c.v_scale = t[5].cast<float>();
  c.dtype = t[6].cast<int>();
  c.num_blocks = t[7].cast<int64_t>();
  c.block_size = t[8].cast<int64_t>();
  c.num_kv_heads = t[9].cast<int64_t>();
  c.head_dim = t[10].cast<int64_t>();
  return c;
}

}  // namespace

void bind_attention(py::module_& m) {
  m.def(
      "reshape_and_cache",
      [](uintptr_t k, uintptr_t v, int src_dtype, uintptr_t slot_mapping, int64_t num_tokens, const py::tuple& cache,
         uintptr_t err, uintptr_t stream) {
        ReshapeCacheDev a;
        a.k = k;
        a.v = v;
        a.src_dtype = src_dtype;
        a.slot_mapping = slot_mapping;
        a.num_tokens = num_tokens;
        a.cache = cache_from(cache);
        a.err = err;
        a.stream = stream;
        py::gil_scoped_release nogil;
        reshape_and_cache_launch(a);
      },
      py::arg("k"), py::arg("v"), py::arg("src_dtype"), py::arg("slot_mapping"), py::arg("num_tokens"),
      py::arg("cache"), py::arg("err"), py::arg("stream"),
      "Write k/v [T, Hkv, D] rows at slot_mapping[t] (int64, -1 skips), converting to the cache dtype.");
  m.def(
      "paged_attention",
      [](bool prefill, uintptr_t q, int q_dtype, uintptr_t out, int64_t num_tokens, int64_t num_seqs,
         int64_t num_heads, uintptr_t block_tables, int64_t max_blocks, uintptr_t seq_lens, uintptr_t query_start_loc,
         int64_t max_query_len, float scale, int64_t sliding_window, int64_t num_splits, uintptr_t workspace,
         int64_t workspace_floats, const py::tuple& cache, uintptr_t err, uintptr_t stream) {
        PagedAttnDev a;
        a.q = q;
        a.q_dtype = q_dtype;
        a.out = out;
        a.num_tokens = num_tokens;
        a.num_seqs = num_seqs;
        a.num_heads = num_heads;
        a.block_tables = block_tables;
        a.max_blocks = max_blocks;
        a.seq_lens = seq_lens;
        a.query_start_loc = query_start_loc;
        a.max_query_len = max_query_len;
        a.scale = scale;
        a.sliding_window = sliding_window;
        a.num_splits = num_splits;
        a.workspace = workspace;
        a.workspace_floats = workspace_floats;
        a.cache = cache_from(cache);
        a.err = err;
        a.stream = stream;
        py::gil_scoped_release nogil;
        if (prefill) paged_attention_prefill_launch(a);
        else paged_attention_decode_launch(a);
      },
      py::arg("prefill"), py::arg("q"), py::arg("q_dtype"), py::arg("out"), py::arg("num_tokens"),
      py::arg("num_seqs"), py::arg("num_heads"), py::arg("block_tables"), py::arg("max_blocks"), py::arg("seq_lens"),
      py::arg("query_start_loc"), py::arg("max_query_len"), py::arg("scale"), py::arg("sliding_window"),
      py::arg("num_splits"), py::arg("workspace"), py::arg("workspace_floats"), py::arg("cache"), py::arg("err"),
      py::arg("stream"), "Paged attention decode (split-K) or causal prefill into out float32 [T, Hq, D].");
  m.def("paged_attention_decode_splits", &paged_attention_decode_splits, py::arg("num_seqs"), py::arg("num_heads"),
        py::arg("num_kv_heads"), py::arg("max_keys"), py::arg("device"),
        "Split-K count the decode kernel uses by default for this shape on this device.");
  m.def("paged_attention_decode_workspace", &paged_attention_decode_workspace, py::arg("num_seqs"),
        py::arg("num_heads"), py::arg("head_dim"), py::arg("num_splits"),
        "float32 elements of decode workspace needed for num_splits (0 for 1).");
}
