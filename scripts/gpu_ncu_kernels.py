"""Launches the GPU kernels under study once each between cudaProfilerStart/Stop, for
`ncu --profile-from-start off` (scripts/gpu_check.sh GPU_CHECK_NCU=1): paged attention decode
(7B geometry, S = 16, ctx 4096, float16 and fp8 caches), the M = 1 GEMV (4096 x 4096 int8,
fp8 and f16, with their activation-prep kernels) and the tiled top-k scan (200k x 384 float32,
Q = 256 k = 100 and Q = 4096 k = 1024: the cases 5x and 1.6x slower than torch at 1M rows). Every
op runs once before the profiled region so compilation and allocation stay outside it.

    ncu --profile-from-start off --section SpeedOfLight ... python scripts/gpu_ncu_kernels.py
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from infercore.benchmarks import bench_attention as BA

from infercore import ops, quant
from infercore.quant import QuantizedWeight


def main() -> None:
    # Each launcher's closure holds its own data (the attention case dict, the weight).
    launches = []
    for dtype in ("float16", "fp8"):
        x = BA._gpu_data(f"ncu/{dtype}", 16, 4096, 32, 8, 128, dtype, "infercore")
        launches.append((f"attention {dtype}", x["launch"]))
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4096, 4096), dtype=np.float32)
    xin = torch.randn((1, 4096), device="cuda", dtype=torch.float16)
    for kind in ("int8", "fp8"):
        qw = quant.quantize_weight(w, kind).to("cuda")
        launches.append((f"linear {kind}", lambda qw=qw: ops.linear(xin, qw, backend="cuda")))
    w16 = QuantizedWeight("f16", (4096, 4096), torch.from_numpy(w).cuda().half())
    launches.append(("linear f16", lambda: ops.linear(xin, w16, backend="cuda")))
    g = torch.Generator(device="cuda").manual_seed(0)
    corpus = torch.randn((200_000, 384), generator=g, device="cuda")
    queries = torch.randn((4096, 384), generator=g, device="cuda")
    for nq, k in ((256, 100), (4096, 1024)):
        launches.append((f"topk Q{nq} k{k}", lambda nq=nq, k=k: ops.topk_inner_product(queries[:nq], corpus, k)))
    for _, fn in launches:
        fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for name, fn in launches:
        torch.cuda.nvtx.range_push(name)
        fn()
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_pop()
    torch.cuda.cudart().cudaProfilerStop()
    print("launched:", ", ".join(n for n, _ in launches))


if __name__ == "__main__":
    main()
