"""What the host adds to one Q = 1 top-k call on a GPU (N = 1M x d = 384, float32, k = 10):
the same kernels launched through mod.topk with a different host sequence each, timed by CUDA
events around the call (device_us) and by the wall clock to a synchronised result (wall_us);
medians of 60 calls. Run on a GPU machine.

H200 VM, 2026-11-26 (device us): kernels 386.5, + allocations 401.1, + isfinite sync before the
launch 462.9, + read after the launch 469.8 (item) / 493.2 (tolist), + copied to pinned memory
and waited on by event 474.7, the whole op 510.5. The op keeps the simple check before launch."""

from __future__ import annotations

import time

import numpy as np
import torch

from infercore import ops
from infercore._native import cuda_module
from infercore.ops import search

N, D, K, CALLS = 1_000_000, 384, 10, 60


def timed(fn) -> tuple[float, float]:
    dev, wall = [], []
    for _ in range(CALLS):
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t0 = time.perf_counter()
        a.record()
        fn()
        b.record()
        b.synchronize()
        wall.append(time.perf_counter() - t0)
        dev.append(a.elapsed_time(b) / 1e3)
    return float(np.median(dev[5:])) * 1e6, float(np.median(wall[5:])) * 1e6


def main() -> None:
    mod = cuda_module()
    g = torch.Generator(device="cuda").manual_seed(0)
    c = torch.randn((N, D), generator=g, device="cuda")
    q = torch.randn((1, D), generator=g, device="cuda")
    wsb = mod.topk_workspace_bytes(1, N, D, K, 0, search.CUDA_MAX_WORKSPACE)
    pre = (torch.empty(wsb, dtype=torch.uint8, device="cuda"), torch.empty((1, K), device="cuda"),
           torch.empty((1, K), dtype=torch.int64, device="cuda"))  # fmt: skip
    stream = torch.cuda.current_stream().cuda_stream

    def launch(ws, s, i):
        mod.topk(q.data_ptr(), 1, D, c.data_ptr(), N, 0, 0, 0, False, K, s.data_ptr(), i.data_ptr(), ws.data_ptr(),
                 ws.numel(), search.CUDA_MAX_WORKSPACE, stream)  # fmt: skip

    def alloc():
        return (torch.empty(mod.topk_workspace_bytes(1, N, D, K, 0, search.CUDA_MAX_WORKSPACE), dtype=torch.uint8,
                            device="cuda"), torch.empty((1, K), device="cuda"),
                torch.empty((1, K), dtype=torch.int64, device="cuda"))  # fmt: skip

    def check_before():
        bool(torch.isfinite(q).all())
        launch(*alloc())

    def check_after_item():
        f = torch.isfinite(q).all()
        launch(*alloc())
        bool(f)

    def check_after_tolist():
        f = torch.isfinite(q).all()
        launch(*alloc())
        f.reshape(-1).tolist()

    def check_pinned_event():
        f = torch.isfinite(q).all()
        flag = torch.empty((), dtype=torch.bool, pin_memory=True)
        flag.copy_(f, non_blocking=True)
        ev = torch.cuda.Event()
        ev.record()
        launch(*alloc())
        ev.synchronize()
        bool(flag)

    variants = {
        "kernels (preallocated, no check)": lambda: launch(*pre),
        "+ allocations": lambda: launch(*alloc()),
        "+ isfinite sync before launch": check_before,
        "+ isfinite read after launch (item)": check_after_item,
        "+ isfinite read after launch (tolist)": check_after_tolist,
        "+ isfinite to pinned, wait on its event": check_pinned_event,
        "ops.topk_inner_product": lambda: ops.topk_inner_product(q, c, K, backend="cuda"),
    }
    for name, fn in variants.items():
        d, w = timed(fn)
        print(f"{name:42s} device {d:7.1f} us  wall {w:7.1f} us")


if __name__ == "__main__":
    main()
