// Streaming-read bandwidth probe: the machine limit that benchmarks report against.
#pragma once
#include <cstdint>
#include <vector>

namespace infercore {

// Reads a buffer of `bytes` (allocated and first-touched by the pool's threads) `repeats`
// times with every thread of the pool; returns the GB/s (1e9 bytes/s) of each pass.
std::vector<double> read_bandwidth_gbps(int64_t bytes, int repeats);

}  // namespace infercore
