// Launchers of the CUDA kernels (host side, no pybind11), and the device queries.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace infercore {
namespace cuda {

struct DeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int64_t memory = 0;
  int sm_count = 0;
};

int runtime_version();
// Number of usable devices; 0 (and `error` set) when there is no driver or no GPU.
int device_count(std::string* error);
DeviceInfo device_info(int index);

// Throws std::runtime_error naming `what` when the last launch failed.
void check_launch(const char* what);

// rms: rms_norm (weight float32 [cols]) else l2_normalize. dtype: 0 f32, 1 f16, 2 bf16.
void norm_launch(bool rms, uintptr_t x, uintptr_t weight, uintptr_t out, int64_t rows, int64_t cols,
                 int dtype, float eps, uintptr_t stream);

// gelu over a flat array of n elements; out may equal x. tanh: the tanh approximation.
void gelu_launch(uintptr_t x, uintptr_t out, int64_t n, int dtype, bool tanh, uintptr_t stream);

}  // namespace cuda
}  // namespace infercore
