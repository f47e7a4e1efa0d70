// pybind11 binding of the CUDA silu_and_mul (csrc/cuda/silu_and_mul.cu). The Python side
// (ops/activation.py) validates the arrays and passes raw device pointers and the caller's stream.
#include <pybind11/pybind11.h>

#include "silu_and_mul_launch.h"

namespace py = pybind11;

void bind_silu_and_mul(py::module_& m) {
  using namespace infercore::cuda;
  m.def(
      "silu_and_mul",
      [](uintptr_t x, uintptr_t out, int64_t rows, int64_t inner, int dtype, uintptr_t stream) {
        py::gil_scoped_release nogil;
        silu_and_mul_launch(x, out, rows, inner, dtype, stream);
      },
      py::arg("x"), py::arg("out"), py::arg("rows"), py::arg("inner"), py::arg("dtype"), py::arg("stream"));
}
