"""ops.linear: GEMV (M=1, bound by the weight read: GB/s of weight bytes vs the streaming-read
probe) and GEMM (M=512, or 128 with --quick: GFLOP/s) for every weight kind, against numpy
float32 (`x @ W.T`, OpenBLAS) and torch CPU float32 with the same thread count. The peers
run once per shape (group dtype "f32"); the printed table relates every kind to them.

Run: python -m infercore.benchmarks.bench_linear [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from infercore.bench.case import Case

KINDS = ("int8", "q8_0", "q4_0", "q4_1", "int4", "fp8", "f32")
SHAPES_QUICK = ((576, 576), (1536, 576), (576, 1536), (49152, 576))
SHAPES_FULL = (*SHAPES_QUICK, (4096, 4096), (11008, 4096))


def _torch_fn(x: np.ndarray, w: np.ndarray) -> Any:
    try:
        import torch
    except ImportError:
        return None
    import infercore

    torch.set_num_threads(infercore.get_num_threads())
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)

    def run() -> Any:
        with torch.no_grad():
            return torch.nn.functional.linear(tx, tw)

    return run


def cases(quick: bool) -> list[Case]:
    from infercore import ops, quant

    rng = np.random.default_rng(0)
    out: list[Case] = []
    shapes = SHAPES_QUICK if quick else SHAPES_FULL
    m_gemm = 128 if quick else 512
    for n, k in shapes:
        w = rng.standard_normal((n, k), dtype=np.float32)
        packed = {kind: quant.quantize_weight(w, kind) for kind in KINDS}
        for m in (1, m_gemm):
            x = rng.standard_normal((m, k), dtype=np.float32)
            shape = f"M{m}xN{n}xK{k}"
            flops = 2.0 * m * n * k
            tfn = _torch_fn(x, w)
            for kind in KINDS:
                qw = packed[kind]
                nbytes = float(qw.nbytes) if m == 1 else 0.0
                out.append(
                    Case(
                        "linear",
                        "linear",
                        shape,
                        kind,
                        "infercore",
                        (lambda x=x, qw=qw: ops.linear(x, qw)),
                        bytes=nbytes,
                        flops=flops,
                        extra={"weight_bytes": qw.nbytes},
                    )
                )
            # Peers once per shape, in the f32 group; main() relates every kind to them.
            peer_bytes = float(w.nbytes) if m == 1 else 0.0
            out.append(
                Case(
                    "linear",
                    "linear",
                    shape,
                    "f32",
                    "numpy_f32",
                    (lambda x=x, w=w: x @ w.T),
                    bytes=peer_bytes,
                    flops=flops,
                )
            )
            if tfn is not None:
                out.append(
                    Case("linear", "linear", shape, "f32", "torch_f32", tfn, bytes=peer_bytes, flops=flops)
                )
    return out


def main() -> None:
    import platform

    import infercore
    from infercore.bench.runner import measure_bandwidth, run_cases

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        infercore.set_num_threads(args.threads)
    info = infercore.system_info()["cpu"]
    bw = measure_bandwidth(args.quick)
    print(
        f"cpu: {info.get('brand', platform.processor())}  isa={infercore.get_isa()}  "
        f"threads={infercore.get_num_threads()}  read probe {bw:.1f} GB/s"
    )
    results = run_cases(cases(args.quick), bw, args.quick)
    hdr = f"{'shape':<22}{'kind':<6}{'impl':<11}{'ms':>9}{'GB/s':>8}{'%bw':>6}{'GFLOP/s':>9}  vs peers"
    print(hdr)
    peers = {(r.shape, r.impl): r.median_s for r in results if r.impl != "infercore"}
    for r in results:
        if r.impl == "infercore":
            for p in ("numpy_f32", "torch_f32"):
                if (r.shape, p) in peers:
                    r.speedup_vs[p] = peers[(r.shape, p)] / r.median_s
        gb = f"{r.gbps:8.1f}" if r.gbps else f"{'':8}"
        pct = f"{r.pct_bandwidth:6.0f}" if r.pct_bandwidth else f"{'':6}"
        sp = " ".join(f"{p}={v:.2f}x" for p, v in r.speedup_vs.items())
        print(f"{r.shape:<22}{r.dtype:<6}{r.impl:<11}{r.median_s * 1e3:9.3f}{gb}{pct}{r.gflops:9.1f}  {sp}")


if __name__ == "__main__":
    main()
