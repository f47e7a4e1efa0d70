// Per-calling-thread scratch for the linear kernels' packed weights (float and int16 GEMM
// panels, the r8 GEMM's interleaved groups). Included by every linear translation unit before
// linear_impl.h.
#pragma once
#include <cstdint>
#include <memory>

namespace infercore {
namespace {

// A per-calling-thread buffer of at least n T that only grows, uninitialized (the packers write
// every value). A fresh allocation (and its page faults) per call cost as much as the GEMM
// itself for M ~ 128 on 4096 x 4096. Each (T, Slot) has its own buffer (Slot: several arrays of
// one type in one call, as the AMX GEMM's packed weights and activation codes).
template <class T, int Slot = 0>
T* thread_pack_buffer(int64_t n) {
  thread_local std::unique_ptr<T[]> store;
  thread_local int64_t capacity = 0;
  if (n > capacity) {
    store.reset(new T[static_cast<size_t>(n)]);
    capacity = n;
  }
  return store.get();
}

}  // namespace
}  // namespace infercore
