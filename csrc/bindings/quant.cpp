// Bindings for the fp8 array conversions (infercore.quant). Python passes C-contiguous 1-D
// arrays of matching length; everything is checked here before the kernel touches memory.
#include "../cpu/quant.h"

#include "common.h"

namespace infercore {

void register_quant(py::module_& m) {
  m.def(
      "fp8_encode",
      [](const py::array& x, py::array& out, int fmt, bool saturate) {
        check_array(x, "x", 1, 4, false);
        IC_CHECK_TYPE(x.dtype().kind() == 'f', "x: expected float32");
        check_array(out, "out", 1, 1, true);
        IC_CHECK_VALUE(out.shape(0) == x.shape(0), "out: expected shape " + shape_str(x));
        IC_CHECK_VALUE(fmt == 0 || fmt == 1, "fmt: expected 0 (e4m3) or 1 (e5m2)");
        const auto* px = static_cast<const float*>(x.data());
        auto* po = static_cast<uint8_t*>(out.mutable_data());
        const int64_t n = x.shape(0);
        py::gil_scoped_release nogil;
        fp8_encode(static_cast<Fp8Format>(fmt), px, po, n, saturate);
      },
      py::arg("x"), py::arg("out"), py::arg("fmt"), py::arg("saturate"));
  m.def(
      "fp8_decode",
      [](const py::array& bits, py::array& out, int fmt) {
        check_array(bits, "bits", 1, 1, false);
        check_array(out, "out", 1, 4, true);
        IC_CHECK_TYPE(out.dtype().kind() == 'f', "out: expected float32");
        IC_CHECK_VALUE(out.shape(0) == bits.shape(0), "out: expected shape " + shape_str(bits));
        IC_CHECK_VALUE(fmt == 0 || fmt == 1, "fmt: expected 0 (e4m3) or 1 (e5m2)");
        const auto* pb = static_cast<const uint8_t*>(bits.data());
        auto* po = static_cast<float*>(out.mutable_data());
        const int64_t n = bits.shape(0);
        py::gil_scoped_release nogil;
        fp8_decode(static_cast<Fp8Format>(fmt), pb, po, n);
      },
      py::arg("bits"), py::arg("out"), py::arg("fmt"));
}

}  // namespace infercore
