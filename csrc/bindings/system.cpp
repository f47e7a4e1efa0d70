// Bindings for CPU feature detection, ISA selection, threads and the bandwidth probe.
#include "../core/cpu_features.h"
#include "../cpu/linear.h"
#include "../core/thread_pool.h"
#include "../cpu/membw.h"
#include "common.h"

#include <pybind11/stl.h>

namespace infercore {

void register_system(py::module_& m) {
  m.def("cpu_info", [] {
    const CpuFeatures& f = cpu_features();
    py::dict d;
    d["vendor"] = f.vendor;
    d["brand"] = f.brand;
    d["avx2"] = f.avx2;
    d["avx512"] = f.avx512;
    d["avx512_vnni"] = f.avx512_vnni;
    d["avx512_bf16"] = f.avx512_bf16;
    d["avx512_fp16"] = f.avx512_fp16;
    d["amx"] = f.amx;
    d["amx_bf16"] = f.amx_bf16;
    d["amx_int8_gemm"] = amx_int8_usable();  // the int8 GEMM runs on AMX tiles at the avx512 level
    d["amx_bf16x3_gemm"] = amx_bf16_usable();  // float32 GEMMs at precision "high" run as bf16x3 tiles
    d["max_isa"] = isa_name(max_isa_level());
    d["hardware_isa"] = isa_name(hardware_isa_level());
    return d;
  });
  m.def("get_isa", [] { return std::string(isa_name(isa_level())); });
  m.def("max_isa", [] { return std::string(isa_name(max_isa_level())); });
  m.def("set_isa", [](const std::string& name) { set_isa_level(parse_isa(name)); }, py::arg("name"));
  m.def("num_threads", [] { return num_threads(); });
  m.def("set_num_threads", [](int n) { set_num_threads(n); }, py::arg("n"));
  m.def(
      "read_bandwidth_gbps",
      [](int64_t bytes, int repeats) {
        py::gil_scoped_release nogil;
        return read_bandwidth_gbps(bytes, repeats);
      },
      py::arg("bytes"), py::arg("repeats"));
}

}  // namespace infercore
