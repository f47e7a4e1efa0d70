#!/usr/bin/env bash
# Every GPU check in one device call (a lent GPU comes with ~15 minutes: build once, then test and
# measure). Builds _C and _C_cuda for the GPU that is there with the image's python3 (it has torch,
# triton, cupy, pybind11 and cmake; nothing is fetched), runs the GPU tests (tests/gpu: the CUDA
# kernels against the float64 references; tests/kernels: the Triton kernels on the device), then
# the GPU cases of each benchmark. Logs and tables go to $OUT (the device tool brings them back).
#   device run:  bash scripts/gpu_check.sh            (about 6-8 minutes on an H100/H200)
#   tests only:  GPU_CHECK_BENCH=0 bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
T0=$(date +%s)
step() { printf '\n=== [%4ss] %s\n' "$(($(date +%s) - T0))" "$*" | tee -a "$OUT/summary.txt"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee -a "$OUT/summary.txt"
ARCH=$($PY -c "import torch; a, b = torch.cuda.get_device_capability(); print(f'{a}{b}')") || exit 1
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/summary.txt"

step "build _C and _C_cuda for sm_$ARCH"
if ! { cmake -S . -B build/gpu -DINFERCORE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_BUILD_TYPE=Release \
         -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" &&
       cmake --build build/gpu -j"$(nproc)"; } >"$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"
  exit 1
fi
cp build/gpu/_C*.so python/infercore/
ln -sfn ../../kernels python/infercore/kernels
ln -sfn ../../benchmarks python/infercore/benchmarks
export PYTHONPATH=$PWD/python
$PY -c "import infercore; print(infercore.system_info()['cuda'])" | tee -a "$OUT/summary.txt"

step "GPU tests (tests/gpu, tests/kernels)"
timeout 330 $PY -m pytest tests/gpu tests/kernels -q --maxfail=25 -p no:cacheprovider >"$OUT/tests.log" 2>&1
echo "pytest exit $?" | tee -a "$OUT/summary.txt"
tail -40 "$OUT/tests.log"

if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
  for b in linear topk attention activation generate; do
    [ -f "benchmarks/bench_$b.py" ] || continue
    step "bench $b (GPU cases)"
    timeout 150 $PY -m "infercore.benchmarks.bench_$b" --gpu-only >"$OUT/bench_$b.txt" 2>&1
    echo "bench $b exit $?" | tee -a "$OUT/summary.txt"
    tail -30 "$OUT/bench_$b.txt"
  done
fi
step "done"
