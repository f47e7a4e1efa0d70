// The _C extension: CPU kernels and system queries. Each op family registers itself.
#include "common.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "infercore native CPU kernels";
  // Later-registered translators run first: send our TypeErrorArg to TypeError before
  // pybind11's default maps std::invalid_argument to ValueError.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const infercore::TypeErrorArg& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });
  infercore::register_system(m);
  infercore::register_norm(m);
  infercore::register_gelu(m);
  infercore::register_quant(m);
  infercore::register_linear(m);
  infercore::register_attention(m);
  infercore::register_topk(m);
  infercore::register_rope(m);
  infercore::register_silu_and_mul(m);
  infercore::register_sample(m);
}
