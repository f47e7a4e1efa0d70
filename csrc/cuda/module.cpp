// The _C_cuda extension: CUDA kernels taking raw device pointers and a stream handle. The
// Python layer (ops/_arrays.py) extracts them from CuPy arrays or torch tensors, checks
// dtype, shape, contiguity and device, and passes the caller's current stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "launch.h"

namespace py = pybind11;
using namespace infercore::cuda;

void bind_linear(py::module_& m);
void bind_attention(py::module_& m);
void bind_topk(py::module_& m);
void bind_silu_and_mul(py::module_& m);
void bind_rope(py::module_& m);

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "infercore CUDA kernels";
  bind_linear(m);
  bind_attention(m);
  bind_topk(m);
  bind_silu_and_mul(m);
  bind_rope(m);
  m.def("runtime_version", &runtime_version);
  m.def("device_count", [] {
    std::string err;
    const int n = device_count(&err);
    return py::make_tuple(n, err);
  });
  m.def("device_info", [](int index) {
    const DeviceInfo d = device_info(index);
    py::dict out;
    out["name"] = d.name;
    out["cc"] = std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor);
    out["memory"] = d.memory;
    out["sm_count"] = d.sm_count;
    return out;
  }, py::arg("index"));
  m.def(
      "norm",
      [](bool rms, uintptr_t x, uintptr_t weight, uintptr_t out, int64_t rows, int64_t cols, int dtype, float eps,
         uintptr_t stream) {
        py::gil_scoped_release nogil;
        norm_launch(rms, x, weight, out, rows, cols, dtype, eps, stream);
      },
      py::arg("rms"), py::arg("x"), py::arg("weight"), py::arg("out"), py::arg("rows"), py::arg("cols"),
      py::arg("dtype"), py::arg("eps"), py::arg("stream"));
  m.def(
      "gelu",
      [](uintptr_t x, uintptr_t out, int64_t n, int dtype, bool tanh, uintptr_t stream) {
        py::gil_scoped_release nogil;
        gelu_launch(x, out, n, dtype, tanh, stream);
      },
      py::arg("x"), py::arg("out"), py::arg("n"), py::arg("dtype"), py::arg("tanh"), py::arg("stream"));
}
