// Binding for the in-place RoPE the model's hot path calls (models/rope.py). Checks shapes,
// dtypes and positions before touching memory.
#include "../cpu/rope.h"

#include "common.h"

namespace infercore {

void register_rope(py::module_& m) {
  m.def(
      "rope_inplace",
      [](py::array& x, int64_t heads, int64_t head_dim, const py::array& positions, const py::array& cos,
         const py::array& sin, bool interleaved) {
        check_array(x, "x", 2, 4, true);
        IC_CHECK_TYPE(x.dtype().kind() == 'f', "x: expected float32");
        check_array(positions, "positions", 1, 8, false);
        IC_CHECK_TYPE(positions.dtype().kind() == 'i', "positions: expected int64");
        IC_CHECK_VALUE(positions.shape(0) == x.shape(0), "positions: expected " + std::to_string(x.shape(0)) +
                                                             " entries, got " + shape_str(positions));
        check_array(cos, "cos", 2, 4, false);
        check_array(sin, "sin", 2, 4, false);
        IC_CHECK_TYPE(cos.dtype().kind() == 'f' && sin.dtype().kind() == 'f', "cos/sin: expected float32");
        IC_CHECK_VALUE(head_dim > 0 && cos.shape(1) == head_dim / 2 && sin.shape(1) == head_dim / 2 &&
                           sin.shape(0) == cos.shape(0),
                       "cos/sin: expected equal shapes (P, head_dim / 2), got " + shape_str(cos) + " and " +
                           shape_str(sin));
        RopeArgs a;
        a.x = static_cast<float*>(x.mutable_data());
        a.rows = x.shape(0);
        a.row_stride = x.shape(1);
        a.heads = heads;
        a.head_dim = head_dim;
        a.positions = static_cast<const int64_t*>(positions.data());
        a.cos = static_cast<const float*>(cos.data());
        a.sin = static_cast<const float*>(sin.data());
        a.interleaved = interleaved;
        const int64_t table_rows = cos.shape(0);
        py::gil_scoped_release nogil;
        rope_forward(a, table_rows);
      },
      py::arg("x"), py::arg("heads"), py::arg("head_dim"), py::arg("positions"), py::arg("cos"), py::arg("sin"),
      py::arg("interleaved"),
      "Rotate heads [0, heads) of each row of x [T, W] float32 in place by the cos/sin table rows "
      "at `positions` (int64 [T]); pairs (2i, 2i+1) when interleaved, else (i, i + head_dim/2).");
}

}  // namespace infercore
