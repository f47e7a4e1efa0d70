#include "cpu_features.h"

#include <atomic>
#include <cpuid.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "errors.h"

namespace infercore {
namespace {

void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) { __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]); }

uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  uint32_t r[4];
  cpuid(0, 0, r);
  uint32_t max_leaf = r[0];
  char vendor[13] = {0};
  std::memcpy(vendor, &r[1], 4);
  std::memcpy(vendor + 4, &r[3], 4);
  std::memcpy(vendor + 8, &r[2], 4);
  f.vendor = vendor;

  cpuid(0x80000000u, 0, r);
  if (r[0] >= 0x80000004u) {
    char brand[49] = {0};
    for (uint32_t i = 0; i < 3; ++i) {
      cpuid(0x80000002u + i, 0, r);
      std::memcpy(brand + 16 * i, r, 16);
    }
    f.brand = brand;
    size_t b = f.brand.find_first_not_of(' ');
    f.brand = b == std::string::npos ? "" : f.brand.substr(b);
  }
  if (max_leaf < 7) return f;

  cpuid(1, 0, r);
  const bool fma = r[2] & (1u << 12), osxsave = r[2] & (1u << 27), avx = r[2] & (1u << 28),
             f16c = r[2] & (1u << 29);
  if (!(osxsave && avx)) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xE6) == 0xE6;
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;

  cpuid(7, 0, r);
  const uint32_t b7 = r[1], c7 = r[2], d7 = r[3];
  f.avx2 = os_ymm && fma && f16c && (b7 & (1u << 5));
  const bool f512 = b7 & (1u << 16), dq = b7 & (1u << 17), bw = b7 & (1u << 30), vl = b7 & (1u << 31);
  f.avx512 = f.avx2 && os_zmm && f512 && dq && bw && vl;
  f.avx512_vnni = f.avx512 && (c7 & (1u << 11));
  f.avx512_fp16 = f.avx512 && (d7 & (1u << 23));
  f.amx = os_amx && (d7 & (1u << 24)) && (d7 & (1u << 25));
  f.amx_bf16 = f.amx && (d7 & (1u << 22));
  cpuid(7, 1, r);
  f.avx512_bf16 = f.avx512 && (r[0] & (1u << 5));
  return f;
}

IsaLevel initial_level() {
  IsaLevel best = max_isa_level();
  const char* env = std::getenv("INFERCORE_ISA");
  if (env == nullptr || *env == '\0') return best;
  IsaLevel want;
  try {
    want = parse_isa(env);
  } catch (const std::invalid_argument&) {
    return best;  // the Python layer warns about a bad value; never fail at import
  }
  return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

std::atomic<int>& level_slot() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

IsaLevel hardware_isa_level() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512) return IsaLevel::kAvx512;
  if (f.avx2) return IsaLevel::kAvx2;
  return IsaLevel::kScalar;
}

IsaLevel max_isa_level() {
  // Every level the CPU and OS support. The AVX-512 kernels were opt-in until stop 23 ran the
  // whole suite on an AVX-512 VNNI/BF16/AMX Xeon with them (2869 passed, bit-identical to AVX2
  // wherever the tests compare ISAs).
  return hardware_isa_level();
}

IsaLevel isa_level() { return static_cast<IsaLevel>(level_slot().load(std::memory_order_relaxed)); }

void set_isa_level(IsaLevel level) {
  if (static_cast<int>(level) > static_cast<int>(max_isa_level())) {
    fail_value(std::string("isa: at most '") + isa_name(max_isa_level()) + "' is supported by this CPU, got '" +
               isa_name(level) + "'");
  }
  level_slot().store(static_cast<int>(level), std::memory_order_relaxed);
}

const char* isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::kScalar: return "scalar";
    case IsaLevel::kAvx2: return "avx2";
    case IsaLevel::kAvx512: return "avx512";
  }
  return "?";
}

IsaLevel parse_isa(const std::string& name) {
  if (name == "scalar") return IsaLevel::kScalar;
  if (name == "avx2") return IsaLevel::kAvx2;
  if (name == "avx512") return IsaLevel::kAvx512;
  fail_value("isa: expected one of 'scalar', 'avx2', 'avx512', got '" + name + "'");
}

}  // namespace infercore
