// Bindings for l2_normalize and rms_norm (CPU). The Python layer (ops/norm.py) normalises
// arguments; these checks make the native entry safe on its own.
#include "../cpu/norm.h"

#include "common.h"

namespace infercore {
namespace {

NormArgs make_args(const py::array& x, py::array& out, const std::string& dtype_name, float eps) {
  const DType dt = parse_dtype(dtype_name, "x");
  check_array(x, "x", 2, dtype_size(dt), false);
  check_array(out, "out", 2, dtype_size(dt), true);
  IC_CHECK_VALUE(out.shape(0) == x.shape(0) && out.shape(1) == x.shape(1),
                 "out: expected shape " + shape_str(x) + ", got " + shape_str(out));
  NormArgs a;
  a.x = x.data();
  a.out = out.mutable_data();
  a.rows = x.shape(0);
  a.cols = x.shape(1);
  a.dtype = dt;
  a.eps = eps;
  return a;
}

}  // namespace

void register_norm(py::module_& m) {
  m.def(
      "l2_normalize",
      [](const py::array& x, py::array& out, const std::string& dtype, float eps) {
        NormArgs a = make_args(x, out, dtype, eps);
        py::gil_scoped_release nogil;
        norm_forward(NormKind::kL2, a);
      },
      py::arg("x"), py::arg("out"), py::arg("dtype"), py::arg("eps"),
      "out[i] = x[i] / max(||x[i]||_2, eps) for each row of a C-contiguous 2-D array.");
  m.def(
      "rms_norm",
      [](const py::array& x, const py::array& weight, py::array& out, const std::string& dtype, float eps) {
        NormArgs a = make_args(x, out, dtype, eps);
        check_array(weight, "weight", 1, 4, false);
        IC_CHECK_TYPE(weight.dtype().kind() == 'f', "weight: expected float32");
        IC_CHECK_VALUE(weight.shape(0) == a.cols, "weight: expected shape (" + std::to_string(a.cols) +
                                                      ",), got " + shape_str(weight));
        a.weight = static_cast<const float*>(weight.data());
        py::gil_scoped_release nogil;
        norm_forward(NormKind::kRms, a);
      },
      py::arg("x"), py::arg("weight"), py::arg("out"), py::arg("dtype"), py::arg("eps"),
      "out[i] = x[i] / sqrt(mean(x[i]^2) + eps) * weight for each row.");
  m.def(
      "layer_norm",
      [](const py::array& x, const py::object& residual, const py::array& weight, const py::array& bias,
         py::array& out, float eps) {
        check_array(x, "x", 2, 4, false);
        IC_CHECK_TYPE(x.dtype().kind() == 'f', "x: expected float32");
        check_array(out, "out", 2, 4, true);
        IC_CHECK_TYPE(out.dtype().kind() == 'f', "out: expected float32");
        IC_CHECK_VALUE(out.shape(0) == x.shape(0) && out.shape(1) == x.shape(1),
                       "out: expected shape " + shape_str(x) + ", got " + shape_str(out));
        LayerNormArgs a;
        a.rows = x.shape(0);
        a.cols = x.shape(1);
        for (const auto& [arr, name] : {std::pair<const py::array*, const char*>{&weight, "weight"}, {&bias, "bias"}}) {
          check_array(*arr, name, 1, 4, false);
          IC_CHECK_TYPE(arr->dtype().kind() == 'f', std::string(name) + ": expected float32");
          IC_CHECK_VALUE(arr->shape(0) == a.cols, std::string(name) + ": expected shape (" + std::to_string(a.cols) +
                                                      ",), got " + shape_str(*arr));
        }
        py::array r;  // outlives the call below (a cast may hold a converted copy)
        if (!residual.is_none()) {
          r = residual.cast<py::array>();
          check_array(r, "residual", 2, 4, false);
          IC_CHECK_TYPE(r.dtype().kind() == 'f', "residual: expected float32");
          IC_CHECK_VALUE(r.shape(0) == a.rows && r.shape(1) == a.cols,
                         "residual: expected shape " + shape_str(x) + ", got " + shape_str(r));
          a.residual = static_cast<const float*>(r.data());
        }
        a.x = static_cast<const float*>(x.data());
        a.weight = static_cast<const float*>(weight.data());
        a.bias = static_cast<const float*>(bias.data());
        a.out = static_cast<float*>(out.mutable_data());
        a.eps = eps;
        py::gil_scoped_release nogil;
        layer_norm_forward(a);
      },
      py::arg("x"), py::arg("residual"), py::arg("weight"), py::arg("bias"), py::arg("out"), py::arg("eps"),
      "out = LayerNorm(x + residual) * weight + bias over the rows of C-contiguous float32 [rows, cols] arrays "
      "(residual may be None; out may alias x or residual).");
}

}  // namespace infercore
