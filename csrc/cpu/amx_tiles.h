// AMX tile state shared by the AMX GEMMs (gemm_int16_amx.cpp, gemm_bf16x3_amx.cpp): the OS
// permission for the tile data and the one tile configuration both use (palette 1, all eight
// tiles 16 rows x 64 bytes). Included only by *_amx.cpp files (compiled with -mamx-*).
#pragma once
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace infercore {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Linux gates the 8 KiB tile state per process (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA);
// asking again after a grant is harmless.
inline bool request_tile_permission() {
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// INFERCORE_AMX=0 keeps every GEMM off the tiles.
inline bool amx_disabled_by_env() {
  const char* env = std::getenv("INFERCORE_AMX");
  return env != nullptr && std::string(env) == "0";
}

inline void load_tile_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  // Not _tile_loadconfig(&cfg): GCC 12 does not see that builtin read the whole struct and has
  // dropped the colsb/rows stores as dead (an AMX attention kernel tried in stop 25, branch
  // amx-attention, then faulted on its first tile instruction with SIGILL; the GEMMs kept the
  // stores only by luck of their surrounding code). An asm operand naming the object keeps them.
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));
}

}  // namespace
}  // namespace infercore
