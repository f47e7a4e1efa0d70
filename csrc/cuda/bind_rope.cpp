// pybind11 binding of the CUDA RoPE (csrc/cuda/rope.cu). The Python side (ops/rope.py) validates
// the arrays and positions and passes raw device pointers and the caller's stream.
#include <pybind11/pybind11.h>

#include "rope_launch.h"

namespace py = pybind11;

void bind_rope(py::module_& m) {
  using namespace infercore::cuda;
  m.def(
      "rope_inplace",
      [](uintptr_t x, int64_t rows, int64_t width, int64_t heads, int64_t head_dim, uintptr_t positions,
         uintptr_t cos, uintptr_t sin, int64_t table_rows, bool interleaved, uintptr_t stream) {
        py::gil_scoped_release nogil;
        rope_launch(x, rows, width, heads, head_dim, positions, cos, sin, table_rows, interleaved, stream);
      },
      py::arg("x"), py::arg("rows"), py::arg("width"), py::arg("heads"), py::arg("head_dim"), py::arg("positions"),
      py::arg("cos"), py::arg("sin"), py::arg("table_rows"), py::arg("interleaved"), py::arg("stream"));
}
