// Per-calling-thread scratch for the linear kernels' packed weights (float and int16 GEMM
// panels, the r8 GEMM's interleaved groups). Included by every linear translation unit before
// linear_impl.h.
#pragma once
#include <cstdint>
#include <memory>
#include <new>

namespace infercore {
namespace {

// A per-calling-thread buffer of at least n T that only grows, uninitialized (the packers write
// every value). A fresh allocation (and its page faults) per call cost as much as the GEMM
// itself for M ~ 128 on 4096 x 4096. Each (T, Slot) has its own buffer (Slot: several arrays of
// one type in one call, as the AMX GEMM's packed weights and activation codes).
// 64-byte (cache line) aligned: plain new[] of a large array returns mmap'd memory 16 bytes past
// a page boundary, which splits every 64-byte AMX tile row and AVX-512 load over two cache
// lines: the AMX GEMMs ran at ~50 instead of ~20 cycles per tile multiply (stop 24).
template <class T, int Slot = 0>
T* thread_pack_buffer(int64_t n) {
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  thread_local std::unique_ptr<T, Free> store;
  thread_local int64_t capacity = 0;
  if (n > capacity) {
    store.reset(static_cast<T*>(::operator new[](static_cast<size_t>(n) * sizeof(T), std::align_val_t(64))));
    capacity = n;
  }
  return store.get();
}

}  // namespace
}  // namespace infercore
