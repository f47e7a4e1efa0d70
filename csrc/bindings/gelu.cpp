// Binding for gelu (CPU). The Python layer (ops/activation.py) flattens and normalises
// arguments; these checks make the native entry safe on its own.
#include "../cpu/gelu.h"

#include "common.h"

namespace infercore {

void register_gelu(py::module_& m) {
  m.def(
      "gelu",
      [](const py::array& x, py::array& out, const std::string& dtype, bool tanh) {
        const DType dt = parse_dtype(dtype, "x");
        check_array(x, "x", 1, dtype_size(dt), false);
        check_array(out, "out", 1, dtype_size(dt), true);
        IC_CHECK_VALUE(out.shape(0) == x.shape(0), "out: expected shape " + shape_str(x) + ", got " + shape_str(out));
        GeluArgs a;
        a.x = x.data();
        a.out = out.mutable_data();
        a.n = x.shape(0);
        a.dtype = dt;
        a.tanh = tanh;
        py::gil_scoped_release nogil;
        gelu_forward(a);
      },
      py::arg("x"), py::arg("out"), py::arg("dtype"), py::arg("tanh"),
      "out = gelu(x) elementwise over a contiguous 1-D array (exact erf form, or the tanh "
      "approximation when tanh is true); out may be x itself.");
}

}  // namespace infercore
