// Binding for the CPU linear kernels. ops/linear.py packs the weight (infercore.quant layouts)
// and normalises x to float32; every size, dtype and contiguity is re-checked here so a bad
// call raises instead of reading out of bounds.
#include "../cpu/linear.h"


#include <optional>

#include "common.h"

namespace infercore {

void register_linear(py::module_& m) {
  m.def(
      "linear",
      [](const py::array& x, const py::array& w, int kind, const std::optional<py::array>& wscale,
         const std::optional<py::array>& gscale, int64_t group, const std::optional<py::array>& bias,
         py::array& out, bool high, bool gelu,
         const std::optional<py::array>& act_scale) {
        IC_CHECK_VALUE(kind >= 0 && kind <= static_cast<int>(WKind::kQ4_1), "kind: unknown weight kind");
        const WKind k = static_cast<WKind>(kind);
        check_array(x, "x", 2, 4, false);
        IC_CHECK_TYPE(x.dtype().kind() == 'f', "x: expected float32");
        check_array(out, "out", 2, 4, true);
        IC_CHECK_TYPE(out.dtype().kind() == 'f', "out: expected float32");
        IC_CHECK_VALUE(w.ndim() == 2 && (w.flags() & py::array::c_style), "w: expected a C-contiguous 2-D array");
        LinearArgs a;
        a.M = x.shape(0);
        a.K = x.shape(1);
        a.N = w.shape(0);
        a.kind = k;
        a.group = group;
        const bool blocks = k == WKind::kQ8_0 || k == WKind::kQ4_0 || k == WKind::kQ4_1;
        IC_CHECK_VALUE(!blocks || a.K % 32 == 0, "x: K must be a multiple of 32 for ggml block kinds");
        if (k == WKind::kInt4)
          IC_CHECK_VALUE((group == 32 || group == 64 || group == 128) && a.K % group == 0,
                         "group_size: expected 32, 64 or 128 dividing K");
        IC_CHECK_VALUE(w.shape(1) * w.itemsize() == linear_row_bytes(k, a.K),
                       "w: expected " + std::to_string(linear_row_bytes(k, a.K)) + " bytes per row, got shape " +
                           shape_str(w));
        IC_CHECK_VALUE(out.shape(0) == a.M && out.shape(1) == a.N, "out: expected shape (M, N)");
        if (k == WKind::kInt8 || k == WKind::kFp8) {
          IC_CHECK_VALUE(wscale.has_value(), "w: scale missing");
          check_array(*wscale, "scale", 1, 4, false);
          IC_CHECK_TYPE(wscale->dtype().kind() == 'f', "scale: expected float32");
          IC_CHECK_VALUE(wscale->shape(0) == a.N, "scale: expected shape (N,)");
          a.wscale = static_cast<const float*>(wscale->data());
        }
        if (k == WKind::kInt4) {
          IC_CHECK_VALUE(gscale.has_value(), "w: group scales missing");
          check_array(*gscale, "scales", 2, 2, false);
          IC_CHECK_VALUE(gscale->shape(0) == a.N && gscale->shape(1) == a.K / group,
                         "scales: expected shape (N, K / group_size)");
          a.gscale = static_cast<const uint16_t*>(gscale->data());
        }
        if (bias.has_value()) {
          check_array(*bias, "bias", 1, 4, false);
          IC_CHECK_TYPE(bias->dtype().kind() == 'f', "bias: expected float32");
          IC_CHECK_VALUE(bias->shape(0) == a.N, "bias: expected shape (N,)");
          a.bias = static_cast<const float*>(bias->data());
        }
        if (act_scale.has_value()) {
          IC_CHECK_VALUE(k == WKind::kInt8, "act_scale: only for int8 weights");
          check_array(*act_scale, "act_scale", 1, 4, false);
          IC_CHECK_TYPE(act_scale->dtype().kind() == 'f', "act_scale: expected float32");
          IC_CHECK_VALUE(act_scale->shape(0) == a.K, "act_scale: expected shape (K,)");
          a.act_scale = static_cast<const float*>(act_scale->data());
        }
        a.x = static_cast<const float*>(x.data());
        a.w = w.data();
        a.out = static_cast<float*>(out.mutable_data());
        a.high = high;
        a.gelu = gelu;
        py::gil_scoped_release nogil;
        linear_forward(a);
      },
      py::arg("x"), py::arg("w"), py::arg("kind"), py::arg("wscale"), py::arg("gscale"), py::arg("group"),
      py::arg("bias"), py::arg("out"), py::arg("high") = false, py::arg("gelu") = false,
      py::arg("act_scale") = py::none(),
      "out = x @ W.T (+ bias) for a packed weight of the given kind (see csrc/cpu/linear.h); high: "
      "matmul precision \"high\"; gelu: exact GELU on the outputs.");
  m.def(
      "linear_int8_activation_bits", [](int64_t M, bool high) { return int8_activation_bits(M, high); },
      py::arg("M"), py::arg("high"),
      "8 or 16: the activation codes an int8-weight linear of M rows runs with.");
}

}  // namespace infercore
