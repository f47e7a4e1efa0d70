// pybind11 bindings of the CUDA top-k search (csrc/cuda/topk.cu). The Python layer
// (ops/search.py) validates dtypes, shapes and devices and allocates outputs and workspace.
#include <pybind11/pybind11.h>

#include <cstdint>

#include "topk_launch.h"

namespace py = pybind11;

void bind_topk(py::module_& m) {
  using namespace infercore::cuda;
  m.def(
      "topk_workspace_bytes",
      [](int64_t Q, int64_t N, int64_t d, int64_t k, int ctype, int64_t max_workspace) {
        return topk_workspace_bytes(Q, N, d, k, ctype, max_workspace);
      },
      py::arg("Q"), py::arg("N"), py::arg("d"), py::arg("k"), py::arg("ctype"), py::arg("max_workspace"));
  m.def(
      "topk",
      [](uintptr_t queries, int64_t Q, int64_t d, uintptr_t corpus, int64_t N, int ctype, uintptr_t scale,
         uintptr_t mask, bool cosine, int64_t k, uintptr_t out_scores, uintptr_t out_ids, uintptr_t workspace,
         int64_t workspace_bytes, int64_t max_workspace, uintptr_t stream) {
        py::gil_scoped_release nogil;
        topk_launch(queries, Q, d, corpus, N, ctype, scale, mask, cosine, k, out_scores, out_ids, workspace,
                    workspace_bytes, max_workspace, stream);
      },
      py::arg("queries"), py::arg("Q"), py::arg("d"), py::arg("corpus"), py::arg("N"), py::arg("ctype"),
      py::arg("scale"), py::arg("mask"), py::arg("cosine"), py::arg("k"), py::arg("out_scores"),
      py::arg("out_ids"), py::arg("workspace"), py::arg("workspace_bytes"), py::arg("max_workspace"),
      py::arg("stream"));
}
