// pybind11 bindings of the CUDA linear GEMV (csrc/cuda/linear.cu). The Python side
// (ops/_linear_gpu.py) validates tensors and passes raw device pointers and the caller's stream.
#include <pybind11/pybind11.h>

#include "linear_launch.h"

namespace py = pybind11;

void bind_linear(py::module_& m) {
  using namespace infercore::cuda;
  m.attr("LINEAR_GEMV_MAX_ROWS") = kLinearGemvMaxRows;
  m.def("linear_gemv_workspace_bytes", &linear_gemv_workspace_bytes, py::arg("kind"), py::arg("M"), py::arg("K"),
        py::arg("x_dtype"));
  m.def(
      "linear_gemv",
      [](int kind, uintptr_t x, int x_dtype, uintptr_t w, uintptr_t scale, int64_t group, uintptr_t bias,
         uintptr_t out, uintptr_t workspace, int64_t workspace_bytes, int64_t M, int64_t N, int64_t K,
         uintptr_t stream) {
        py::gil_scoped_release nogil;
        linear_gemv_launch(kind, x, x_dtype, w, scale, group, bias, out, workspace, workspace_bytes, M, N, K,
                           stream);
      },
      py::arg("kind"), py::arg("x"), py::arg("x_dtype"), py::arg("w"), py::arg("scale"), py::arg("group"),
      py::arg("bias"), py::arg("out"), py::arg("workspace"), py::arg("workspace_bytes"), py::arg("M"), py::arg("N"),
      py::arg("K"), py::arg("stream"));
}
