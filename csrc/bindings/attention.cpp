// Bindings for the paged KV cache kernels (CPU). ops/attention.py normalises arguments; these
// checks make the native entry safe on its own: shapes, dtypes and contiguity here, index
// ranges (block ids, seq_lens, slots) in csrc/cpu/attention.cpp, all before memory is touched.
#include "../cpu/attention.h"

#include "common.h"

namespace infercore {
namespace {

void check_int(const py::array& a, const char* arg, int ndim, int itemsize) {
  check_array(a, arg, ndim, itemsize, false);
  IC_CHECK_TYPE(a.dtype().kind() == 'i', std::string(arg) + ": expected int" + std::to_string(8 * itemsize));
}

void check_dims(const py::array& a, const char* arg, std::initializer_list<py::ssize_t> dims) {
  int i = 0;
  std::string want = "(";
  bool ok = true;
  for (py::ssize_t d : dims) {
    want += (i ? ", " : "") + std::to_string(d);
    ok = ok && a.shape(i) == d;
    ++i;
  }
  IC_CHECK_VALUE(ok, std::string(arg) + ": expected shape " + want + (i == 1 ? ",)" : ")") + ", got " + shape_str(a));
}

KvCacheView make_cache(py::array& k_cache, py::array& v_cache, int dtype_code, float k_scale, float v_scale,
                       const py::object& k_scales, const py::object& v_scales, bool writeable) {
  IC_CHECK_TYPE(dtype_code >= 0 && dtype_code <= 4, "k_cache: unknown cache dtype code " + std::to_string(dtype_code));
  KvCacheView c;
  c.dtype = static_cast<KvDType>(dtype_code);
  const int esz = kv_dtype_size(c.dtype);
  check_array(k_cache, "k_cache", 4, esz, writeable);
  check_array(v_cache, "v_cache", 4, esz, writeable);
  check_dims(v_cache, "v_cache", {k_cache.shape(0), k_cache.shape(1), k_cache.shape(2), k_cache.shape(3)});
  c.num_blocks = k_cache.shape(0);
  c.block_size = k_cache.shape(1);
  c.num_kv_heads = k_cache.shape(2);
  c.head_dim = k_cache.shape(3);
  c.k = writeable ? k_cache.mutable_data() : const_cast<void*>(k_cache.data());
  c.v = writeable ? v_cache.mutable_data() : const_cast<void*>(v_cache.data());
  c.k_scale = k_scale;
  c.v_scale = v_scale;
  if (c.dtype == KvDType::kInt8) {
    IC_CHECK_TYPE(!k_scales.is_none() && !v_scales.is_none(),
                  "k_scale/v_scale: int8 caches need float32 arrays [num_blocks, block_size, num_kv_heads]");
    py::array ks = k_scales.cast<py::array>(), vs = v_scales.cast<py::array>();
    check_array(ks, "k_scale", 3, 4, writeable);
    check_array(vs, "v_scale", 3, 4, writeable);
    IC_CHECK_TYPE(ks.dtype().kind() == 'f' && vs.dtype().kind() == 'f', "k_scale/v_scale: expected float32");
    check_dims(ks, "k_scale", {c.num_blocks, c.block_size, c.num_kv_heads});
    check_dims(vs, "v_scale", {c.num_blocks, c.block_size, c.num_kv_heads});
    c.k_scales = static_cast<float*>(writeable ? ks.mutable_data() : const_cast<void*>(ks.data()));
    c.v_scales = static_cast<float*>(writeable ? vs.mutable_data() : const_cast<void*>(vs.data()));
  }
  return c;
}

}  // namespace

void register_attention(py::module_& m) {
  m.def(
      "reshape_and_cache",
      [](const py::array& k, const py::array& v, py::array& k_cache, py::array& v_cache, const py::array& slots,
         const std::string& src_dtype, int cache_dtype, float k_scale, float v_scale, const py::object& k_scales,
         const py::object& v_scales) {
        ReshapeCacheArgs a;
        a.cache = make_cache(k_cache, v_cache, cache_dtype, k_scale, v_scale, k_scales, v_scales, true);
        a.src_dtype = parse_dtype(src_dtype, "k");
        check_array(k, "k", 3, dtype_size(a.src_dtype), false);
        check_array(v, "v", 3, dtype_size(a.src_dtype), false);
        check_int(slots, "slot_mapping", 1, 8);
        const py::ssize_t T = slots.shape(0);
        check_dims(k, "k", {T, a.cache.num_kv_heads, a.cache.head_dim});
        check_dims(v, "v", {T, a.cache.num_kv_heads, a.cache.head_dim});
        a.k = k.data();
        a.v = v.data();
        a.slot_mapping = static_cast<const int64_t*>(slots.data());
        a.num_tokens = T;
        py::gil_scoped_release nogil;
        reshape_and_cache(a);
      },
      py::arg("k"), py::arg("v"), py::arg("k_cache"), py::arg("v_cache"), py::arg("slot_mapping"),
      py::arg("src_dtype"), py::arg("cache_dtype"), py::arg("k_scale"), py::arg("v_scale"), py::arg("k_scales"),
      py::arg("v_scales"), "Write token t's K/V rows at slot_mapping[t] (-1 skips), quantizing for fp8/int8.");
  m.def(
      "paged_attention",
      [](bool prefill, const py::array& q, const std::string& q_dtype, py::array& k_cache, py::array& v_cache,
         int cache_dtype, const py::array& block_tables, const py::array& seq_lens, const py::object& query_start_loc,
         py::array& out, float scale, float k_scale, float v_scale, const py::object& k_scales,
         const py::object& v_scales, int64_t sliding_window, int64_t num_splits) {
        PagedAttnArgs a;
        a.cache = make_cache(k_cache, v_cache, cache_dtype, k_scale, v_scale, k_scales, v_scales, false);
        a.q_dtype = parse_dtype(q_dtype, "q");
        check_array(q, "q", 3, dtype_size(a.q_dtype), false);
        IC_CHECK_VALUE(q.shape(2) == a.cache.head_dim, "q: head_dim " + std::to_string(q.shape(2)) +
                                                           " differs from the cache's " +
                                                           std::to_string(a.cache.head_dim));
        check_int(seq_lens, "seq_lens", 1, 4);
        check_int(block_tables, "block_tables", 2, 4);
        const py::ssize_t S = seq_lens.shape(0);
        IC_CHECK_VALUE(block_tables.shape(0) == S, "block_tables: expected " + std::to_string(S) +
                                                       " rows (one per sequence), got " + shape_str(block_tables));
        check_array(out, "out", 3, 4, true);
        check_dims(out, "out", {q.shape(0), q.shape(1), q.shape(2)});
        if (prefill) {
          IC_CHECK_TYPE(!query_start_loc.is_none(), "query_start_loc: expected an int32 array [S + 1]");
          py::array qsl = query_start_loc.cast<py::array>();
          check_int(qsl, "query_start_loc", 1, 4);
          check_dims(qsl, "query_start_loc", {S + 1});
          a.query_start_loc = static_cast<const int32_t*>(qsl.data());
        } else {
          IC_CHECK_VALUE(q.shape(0) == S, "q: expected one token per sequence (" + std::to_string(S) + "), got " +
                                              shape_str(q));
        }
        a.q = q.data();
        a.out = static_cast<float*>(out.mutable_data());
        a.num_tokens = q.shape(0);
        a.num_seqs = S;
        a.num_heads = q.shape(1);
        a.block_tables = static_cast<const int32_t*>(block_tables.data());
        a.max_blocks = block_tables.shape(1);
        a.seq_lens = static_cast<const int32_t*>(seq_lens.data());
        a.scale = scale;
        a.sliding_window = sliding_window;
        a.num_splits = num_splits;
        py::gil_scoped_release nogil;
        if (prefill) paged_attention_prefill(a);
        else paged_attention_decode(a);
      },
      py::arg("prefill"), py::arg("q"), py::arg("q_dtype"), py::arg("k_cache"), py::arg("v_cache"),
      py::arg("cache_dtype"), py::arg("block_tables"), py::arg("seq_lens"), py::arg("query_start_loc"),
      py::arg("out"), py::arg("scale"), py::arg("k_scale"), py::arg("v_scale"), py::arg("k_scales"),
      py::arg("v_scales"), py::arg("sliding_window"), py::arg("num_splits"),
      "Paged attention over an NHD cache: decode (one token per sequence) or causal prefill.");
  m.def(
      "packed_attention",
      [](const py::array& qkv, const py::array& cu_seqlens, py::array& out, float scale) {
        check_array(qkv, "qkv", 4, 4, false);
        IC_CHECK_TYPE(qkv.dtype().kind() == 'f', "qkv: expected float32");
        IC_CHECK_VALUE(qkv.shape(1) == 3, "qkv: expected shape [T, 3, num_heads, head_dim], got " + shape_str(qkv));
        check_int(cu_seqlens, "cu_seqlens", 1, 8);
        IC_CHECK_VALUE(cu_seqlens.shape(0) >= 1, "cu_seqlens: expected [S + 1] offsets, got an empty array");
        check_array(out, "out", 3, 4, true);
        IC_CHECK_TYPE(out.dtype().kind() == 'f', "out: expected float32");
        check_dims(out, "out", {qkv.shape(0), qkv.shape(2), qkv.shape(3)});
        PackedAttnArgs a;
        a.qkv = static_cast<const float*>(qkv.data());
        a.cu_seqlens = static_cast<const int64_t*>(cu_seqlens.data());
        a.out = static_cast<float*>(out.mutable_data());
        a.num_tokens = qkv.shape(0);
        a.num_seqs = cu_seqlens.shape(0) - 1;
        a.num_heads = qkv.shape(2);
        a.head_dim = qkv.shape(3);
        a.scale = scale;
        py::gil_scoped_release nogil;
        packed_attention(a);
      },
      py::arg("qkv"), py::arg("cu_seqlens"), py::arg("out"), py::arg("scale"),
      "Bidirectional attention within each packed sequence (encoder models): qkv [T, 3, H, D] float32, "
      "cu_seqlens int64 [S + 1] -> out [T, H, D].");
}

}  // namespace infercore
