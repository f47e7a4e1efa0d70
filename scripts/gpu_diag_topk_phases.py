"""Where a top-k call spends its device time: each CUDA kernel of ops.topk_inner_product
(backend="cuda") on N = 1M x d = 384 (Q = 1, 256, 4096), averaged over 20 calls under
torch.profiler, next to torch.mv over the same corpus (a plain read of it) and the bytes / time
of the scan kernel.
Run on a GPU machine: python scripts/gpu_diag_topk_phases.py"""

from __future__ import annotations

import collections

import torch
from torch.profiler import ProfilerActivity, profile

from infercore import ops

N, D, CALLS = 1_000_000, 384, 20


def kernel_times(fn) -> dict[str, float]:
    """Average device microseconds per call of each kernel fn launches."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(CALLS):
            fn()
        torch.cuda.synchronize()
    out: dict[str, float] = collections.defaultdict(float)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            out[ev.name[:60]] += ev.time_range.elapsed_us() / CALLS
    return dict(out)


def main() -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    c32 = torch.randn((N, D), generator=g, device="cuda")
    scale = (c32.abs().amax(dim=1) / 127).contiguous()
    corpora = {"float32": (c32, None), "float16": (c32.half(), None),
               "int8": (torch.clamp(torch.round(c32 / scale[:, None]), -127, 127).to(torch.int8), scale)}  # fmt: skip
    queries = torch.randn((4096, D), generator=g, device="cuda")
    cases = [(1, "float32", 10), (1, "float16", 10), (1, "int8", 10), (1, "float32", 100), (1, "float32", 8192),
             (256, "float32", 100), (4096, "float32", 1024)]  # fmt: skip
    for nq, dtype, k in cases:
        q = queries[:nq]
        c, sc = corpora[dtype]
        nbytes = c.numel() * c.element_size()
        times = kernel_times(lambda q=q, c=c, sc=sc, k=k: ops.topk_inner_product(q, c, k, corpus_scale=sc,
                                                                                 backend="cuda"))  # fmt: skip
        total = sum(times.values())
        print(f"Q{nq} k{k} {dtype}: {total:.1f} us of kernels per call")
        for name, us in sorted(times.items(), key=lambda kv: -kv[1]):
            extra = f"  {nbytes / us / 1e3:.0f} GB/s" if "scan" in name or "stream" in name else ""
            print(f"    {us:9.1f} us  {name}{extra}")
    for dtype in ("float32", "float16"):
        c = corpora[dtype][0]
        qq = queries[0].to(c.dtype)
        us = sum(kernel_times(lambda c=c, qq=qq: torch.mv(c, qq)).values())
        gbps = c.numel() * c.element_size() / us / 1e3
        print(f"torch.mv {dtype} (a plain read of the corpus): {us:.1f} us, {gbps:.0f} GB/s")


if __name__ == "__main__":
    main()
