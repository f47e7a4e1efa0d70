#!/usr/bin/env bash
# Every GPU check in one device call (a lent GPU comes with ~15 minutes, start included: build
# once, then test and measure). Builds _C and _C_cuda for the GPU that is there with the image's
# python3 (it has torch, triton, pybind11 and cmake; nothing is fetched), runs the GPU tests
# (tests/gpu: the CUDA kernels against the float64 references; tests/kernels: the Triton kernels
# on the device), then the GPU cases of each benchmark, most wanted first. Every step gets at most
# what is left of GPU_CHECK_SECONDS, so the logs in $OUT come back even when time runs out, and
# each benchmark row is printed as soon as it is measured (INFERCORE_BENCH_STREAM=1).
#   device run:  bash scripts/gpu_check.sh                  (GPU_CHECK_SECONDS=540 by default)
#   tests only:  GPU_CHECK_BENCH=0 GPU_CHECK_PROFILE=0 bash scripts/gpu_check.sh
#   some benches: GPU_CHECK_BENCHES="generate:90 topk:70" bash scripts/gpu_check.sh  (name:seconds;
#                 name+flag passes --flag: generate+llama1b:150)
#   counters:     GPU_CHECK_NCU=1 GPU_CHECK_TESTS=0 GPU_CHECK_BENCH=0 bash scripts/gpu_check.sh
#   diagnostics:  GPU_CHECK_DIAG=0 (none) | 1 (all, default) | NAME (scripts/gpu_diag_*NAME*.py)
#   some tests:   GPU_CHECK_TEST_PATHS="tests/gpu/test_attention_cuda.py"
#   no rebuild:   GPU_CHECK_PREBUILT=DIR (the _C*.so files an earlier call left in $OUT, carried in DIR)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
T0=$(date +%s)
END=$((T0 + ${GPU_CHECK_SECONDS:-540}))
export PYTHONUNBUFFERED=1 INFERCORE_BENCH_STREAM=1
step() { printf '\n=== [%4ss] %s\n' "$(($(date +%s) - T0))" "$*" | tee -a "$OUT/summary.txt"; }
# left CAP: seconds for the next step, at most CAP and never past the deadline (minus 5 s to report)
left() { local l=$((END - $(date +%s) - 5)); [ "$l" -gt "$1" ] && l=$1; [ "$l" -lt 1 ] && l=1; echo "$l"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee -a "$OUT/summary.txt"
ARCH=$($PY -c "import torch; a, b = torch.cuda.get_device_capability(); print(f'{a}{b}')") || exit 1
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/summary.txt"

step "build _C and _C_cuda for sm_$ARCH"
if [ -n "${GPU_CHECK_PREBUILT:-}" ]; then
  # modules an earlier call built and returned in $OUT (carried back in a folder git ignores)
  mkdir -p build/gpu && cp "$GPU_CHECK_PREBUILT"/_C*.so build/gpu/ || exit 1
elif ! { cmake -S . -B build/gpu -DINFERCORE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DCMAKE_BUILD_TYPE=Release \
         -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" &&
       timeout "$(left 240)" cmake --build build/gpu -j"$(nproc)"; } >"$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"
  exit 1
fi
cp build/gpu/_C*.so python/infercore/
[ -n "${GPU_CHECK_PREBUILT:-}" ] || cp build/gpu/_C*.so "$OUT/"   # for GPU_CHECK_PREBUILT in a later call
ln -sfn ../../kernels python/infercore/kernels
ln -sfn ../../benchmarks python/infercore/benchmarks
export PYTHONPATH=$PWD/python
$PY -c "import infercore; print(infercore.system_info()['cuda'])" | tee -a "$OUT/summary.txt"

if [ "${GPU_CHECK_NCU:-0}" = 1 ]; then
  # Hardware counters of the kernels under study (ncu works on Firecracker machines, not on gVisor)
  step "ncu: attention decode, M = 1 GEMV, tiled top-k (scripts/gpu_ncu_kernels.py)"
  timeout "$(left 150)" ncu --profile-from-start off --clock-control none \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis --section InstructionStats \
    $PY scripts/gpu_ncu_kernels.py >"$OUT/ncu.txt" 2>&1
  echo "ncu exit $?" | tee -a "$OUT/summary.txt"
  grep -E "^  [a-z_]+.*\(|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Issued Ipc|Stall|No Eligible" "$OUT/ncu.txt" | head -80
fi

if [ "${GPU_CHECK_TESTS:-1}" = 1 ]; then
step "GPU tests (tests/gpu, tests/kernels, tests/search/test_index_device.py)"
# 8 workers (one CUDA context each); each failure is printed as it happens (scripts/pytest_instafail.py)
PYTHONPATH=$PYTHONPATH:$PWD/scripts timeout "$(left 200)" $PY -m pytest ${GPU_CHECK_TEST_PATHS:-tests/gpu tests/kernels tests/search/test_index_device.py} -q -rfE --tb=short \
  -n "${GPU_CHECK_WORKERS:-8}" -p pytest_instafail -p no:cacheprovider --durations=15 >"$OUT/tests.log" 2>&1
echo "pytest exit $?" | tee -a "$OUT/summary.txt"
grep -E "passed|failed|error" "$OUT/tests.log" | tail -3
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -40
fi

# Standalone diagnostics of toolchain behaviour (printed into summary.txt: $OUT returns at most 8 files).
# ~15 s of device time for all of them: GPU_CHECK_DIAG=0 skips them, GPU_CHECK_DIAG=topk runs only
# the scripts whose name contains "topk".
for f in scripts/gpu_diag_*.py; do
  [ -f "$f" ] || continue
  [ "${GPU_CHECK_DIAG:-1}" = 0 ] && continue
  case "${GPU_CHECK_DIAG:-1}" in 1) ;; *) [[ "$f" == *"${GPU_CHECK_DIAG}"* ]] || continue ;; esac
  step "diagnostic $f"
  timeout "$(left 40)" $PY "$f" 2>&1 | tee -a "$OUT/summary.txt"
done

if [ "${GPU_CHECK_PROFILE:-1}" = 1 ]; then
  step "profile: host time of a GPU decode step"
  timeout "$(left 60)" $PY scripts/gpu_profile_decode.py int8 >"$OUT/profile.txt" 2>&1
  echo "profile exit $?" | tee -a "$OUT/summary.txt"
  head -30 "$OUT/profile.txt"
fi

if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
  # name[+flag]:seconds, e.g. generate+llama1b:150 runs bench_generate --gpu-only --llama1b
  for spec in ${GPU_CHECK_BENCHES:-generate:90 linear:80 topk:70 attention:80 activation:40}; do
    name=${spec%%:*}
    b=${name%%+*}
    flag=""
    [ "$name" != "$b" ] && flag="--${name#*+}"
    [ -f "benchmarks/bench_$b.py" ] || continue
    step "bench $name (GPU cases)"
    timeout "$(left "${spec##*:}")" $PY -m "infercore.benchmarks.bench_$b" --gpu-only $flag >"$OUT/bench_$name.txt" 2>&1
    echo "bench $name exit $?" | tee -a "$OUT/summary.txt"
    tail -40 "$OUT/bench_$name.txt"
  done
fi
step "done"
