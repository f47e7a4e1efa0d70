// Argument checks shared by the bindings: each names the argument and what was expected, and
// throws ValueError/TypeError through pybind11 (never an abort).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>  // every binding TU sees the same casters (std::vector, std::optional)

#include <string>

#include "../core/dtype.h"
#include "../core/errors.h"

namespace infercore {
namespace py = pybind11;

void register_system(py::module_& m);
void register_norm(py::module_& m);
void register_gelu(py::module_& m);
void register_quant(py::module_& m);
void register_linear(py::module_& m);
void register_attention(py::module_& m);
void register_topk(py::module_& m);
void register_rope(py::module_& m);
void register_silu_and_mul(py::module_& m);
void register_sample(py::module_& m);

inline DType parse_dtype(const std::string& name, const char* arg) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  fail_type(std::string(arg) + ": expected dtype float32, float16 or bfloat16, got " + name);
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A C-contiguous array of `ndim` dims whose elements are `itemsize` bytes.
inline void check_array(const py::array& a, const char* arg, int ndim, int itemsize, bool writeable) {
  IC_CHECK_VALUE(a.ndim() == ndim, std::string(arg) + ": expected " + std::to_string(ndim) +
                                       " dimensions, got shape " + shape_str(a));
  IC_CHECK_TYPE(a.itemsize() == itemsize, std::string(arg) + ": expected " + std::to_string(itemsize) +
                                              "-byte elements, got " + std::to_string(a.itemsize()));
  IC_CHECK_VALUE(a.flags() & py::array::c_style, std::string(arg) + ": expected a C-contiguous array");
  if (writeable) IC_CHECK_VALUE(a.writeable(), std::string(arg) + ": expected a writeable array");
}

}  // namespace infercore
