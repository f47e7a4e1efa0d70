// Binding for silu_and_mul (CPU). The Python layer (ops/activation.py) reshapes to 2-D and
// normalises arguments; these checks make the native entry safe on its own.
#include "../cpu/silu_and_mul.h"

#include "common.h"

namespace infercore {

void register_silu_and_mul(py::module_& m) {
  m.def(
      "silu_and_mul",
      [](const py::array& x, py::array& out, const std::string& dtype) {
        const DType dt = parse_dtype(dtype, "x");
        check_array(x, "x", 2, dtype_size(dt), false);
        check_array(out, "out", 2, dtype_size(dt), true);
        IC_CHECK_VALUE(x.shape(1) % 2 == 0, "x: expected an even last dimension [rows, 2 * I], got " + shape_str(x));
        IC_CHECK_VALUE(out.shape(0) == x.shape(0) && out.shape(1) == x.shape(1) / 2,
                       "out: expected shape (" + std::to_string(x.shape(0)) + ", " + std::to_string(x.shape(1) / 2) +
                           "), got " + shape_str(out));
        SiluMulArgs a;
        a.x = x.data();
        a.out = out.mutable_data();
        a.rows = x.shape(0);
        a.inner = x.shape(1) / 2;
        a.dtype = dt;
        py::gil_scoped_release nogil;
        silu_and_mul_forward(a);
      },
      py::arg("x"), py::arg("out"), py::arg("dtype"),
      "out[r, j] = silu(x[r, j]) * x[r, I + j] for x [rows, 2I] and out [rows, I] (contiguous, same "
      "dtype, no overlap with x).");
}

}  // namespace infercore
