// Device queries through the CUDA runtime (static cudart: no CUDA library is needed at import).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "launch.h"

namespace infercore {
namespace cuda {

int runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

int device_count(std::string* error) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (error) *error = cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return n;
}

DeviceInfo device_info(int index) {
  std::string err;
  const int n = device_count(&err);
  if (index < 0 || index >= n) throw std::invalid_argument("device: index " + std::to_string(index) + " out of range [0, " + std::to_string(n) + ")");
  cudaDeviceProp p;
  const cudaError_t e = cudaGetDeviceProperties(&p, index);
  if (e != cudaSuccess) throw std::runtime_error(std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e));
  DeviceInfo d;
  d.name = p.name;
  d.cc_major = p.major;
  d.cc_minor = p.minor;
  d.memory = static_cast<int64_t>(p.totalGlobalMem);
  d.sm_count = p.multiProcessorCount;
  return d;
}

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": CUDA launch failed: " + cudaGetErrorString(e));
}

}  // namespace cuda
}  // namespace infercore
