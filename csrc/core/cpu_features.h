// CPU feature detection (cpuid + xgetbv) and the ISA level the kernels dispatch on.
// The level is chosen once at import: the best the CPU and OS support, lowered by
// INFERCORE_ISA=scalar|avx2, and adjustable later with set_isa_level (never above
// max_isa_level()).
#pragma once
#include <string>

namespace infercore {

enum class IsaLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;        // AVX2 + FMA + F16C, with OS support for YMM state
  bool avx512 = false;      // AVX-512 F + BW + VL + DQ, with OS support for ZMM state
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx512_fp16 = false;
  bool amx = false;       // AMX-TILE + AMX-INT8, with OS support for the tile state
  bool amx_bf16 = false;  // AMX-BF16 as well
  std::string vendor;
  std::string brand;
};

const CpuFeatures& cpu_features();
IsaLevel hardware_isa_level();  // best level this CPU and OS support
IsaLevel max_isa_level();        // best level the kernels may use (= hardware_isa_level())
IsaLevel isa_level();        // level kernels use now
void set_isa_level(IsaLevel level);  // throws std::invalid_argument above max_isa_level()
const char* isa_name(IsaLevel level);
IsaLevel parse_isa(const std::string& name);  // throws std::invalid_argument

}  // namespace infercore
