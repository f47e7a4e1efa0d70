"""ops.linear: GEMV (M=1, bound by the weight read: GB/s of weight bytes vs the streaming-read
probe), batched decode (M=16: GFLOP/s) and GEMM (M=512, or 128 with --quick: GFLOP/s) for every
weight kind, against numpy
float32 (`x @ W.T`, OpenBLAS) and torch CPU float32 with the same thread count. The peers
run once per shape (group dtype "f32"); the printed table relates every kind to them.

On a machine with a CUDA device (and only there) `--gpu` (or `--gpu-only`) adds the GPU table:
GEMV (M=1) 4096x4096 and 14336x4096 per kind through ops.linear(backend="cuda") in GB/s of
weight bytes and % of the HBM bandwidth measured by a device-to-device copy in the same run, vs
torch fp16 F.linear; GEMM M=512 (Triton, fp16 activations) in TFLOP/s vs torch fp16. Every
case is timed as CUDA-graph replays (launch overhead out) over enough weight copies to exceed
the L2 cache; ~30-60 s, most of it quantizing on the host and compiling the Triton GEMMs.

Run: python -m infercore.benchmarks.bench_linear [--quick] [--threads N] [--gpu | --gpu-only]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from infercore.bench.case import Case

KINDS = ("int8", "q8_0", "q4_0", "q4_1", "int4", "fp8", "f32")
# precision="high" rows (impl "infercore-high") at the GEMM size: int8 W8A8 (on AMX CPUs on int8
# tiles, elsewhere the int16 GEMM on 8-bit codes: what the LLM's int8 weights run); on AMX CPUs fp8
# as bf16x2 and float32 as bf16x3 on bf16 tiles, elsewhere the same as the default
HIGH_KINDS = ("int8", "fp8", "f32")
PEERS = ("numpy_f32", "torch_f32")
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
        for m in (1, 16, m_gemm):  # decode, batched decode (16 streams), prefill
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
                if m == m_gemm and kind in HIGH_KINDS:
                    out.append(Case("linear", "linear", shape, kind, "infercore-high",
                                    (lambda x=x, qw=qw: ops.linear(x, qw, precision="high")), flops=flops,
                                    extra={"weight_bytes": qw.nbytes}))
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


GPU_KINDS = ("f16", "bf16", "f32", "fp8", "int8", "int4", "q8_0", "q4_0", "q4_1")
GPU_SHAPES = ((4096, 4096), (14336, 4096))


def _gpu_graph_time(torch: Any, fns: list[Any], reps: int = 7) -> float:
    """Median seconds per call of fns (one call each, in turn) replayed from a CUDA graph."""
    for fn in fns:  # warm-up: Triton compiles, workspaces allocate
        fn()
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for fn in fns:
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for fn in fns:
            fn()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        graph.replay()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / 1e3 / len(fns))
    return float(np.median(times))


def _hbm_copy_gbps(torch: Any) -> float:
    """Device-to-device copy of 1 GiB: (bytes read + bytes written) / time, median of 10."""
    n = (1 << 30) // 4
    a = torch.empty(n, device="cuda")
    a.normal_()
    b = torch.empty_like(a)
    b.copy_(a)
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        b.copy_(a)
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) / 1e3)
    del a, b
    return 2.0 * n * 4 / float(np.median(times)) / 1e9


def _gpu_weight(torch: Any, quant: Any, w_host: np.ndarray, kind: str, n_rows: int) -> Any:
    """kind's QuantizedWeight of w_host on the GPU with its rows repeated up to n_rows (every kind
    packs rows independently, so this equals quantizing the repeated matrix, at 1/3.5 the host
    time)."""
    from infercore.quant import QuantizedWeight

    wt = torch.from_numpy(w_host).cuda()
    if kind == "bf16":  # built on the GPU: the host bf16 rounding is slow at this size
        qw = QuantizedWeight("bf16", tuple(w_host.shape), wt.bfloat16().view(torch.int16))
    elif kind == "f16":
        qw = QuantizedWeight("f16", tuple(w_host.shape), wt.half())
    elif kind == "f32":
        qw = QuantizedWeight("f32", tuple(w_host.shape), wt)
    else:
        qw = quant.quantize_weight(w_host, kind).to("cuda")
    reps = -(-n_rows // w_host.shape[0])

    def grow(t: Any) -> Any:
        return t if t is None or t.ndim == 0 else torch.cat([t] * reps)[:n_rows].contiguous()

    return QuantizedWeight(qw.kind, (n_rows, w_host.shape[1]), grow(qw.data), grow(qw.scale), qw.group_size)


def gpu_main(quick: bool) -> None:
    import torch

    from infercore import ops, quant
    from infercore.ops._linear_gpu import cuda_linear_module

    if not torch.cuda.is_available():
        print("gpu: no CUDA device, GPU cases skipped")
        return
    backend = "cuda" if cuda_linear_module() is not None else "triton"
    props = torch.cuda.get_device_properties(0)
    hbm = _hbm_copy_gbps(torch)
    sms = props.multi_processor_count
    print(f"gpu: {props.name}  SMs={sms}  d2d copy {hbm:.0f} GB/s  backend={backend}", flush=True)
    rng = np.random.default_rng(0)
    k = 4096
    w_host = rng.standard_normal((4096, k), dtype=np.float32)
    l2 = 256 << 20  # rotate weight copies until a pass reads >= 256 MB (H100 L2: 50 MB)
    print(f"{'case':<24}{'kind':<6}{'impl':<12}{'us':>9}{'GB/s':>8}{'%HBM':>6}{'TFLOP/s':>9}{'vs torch fp16':>15}")
    for kind in GPU_KINDS:
        for n, _k in GPU_SHAPES:
            qw = _gpu_weight(torch, quant, w_host, kind, n)
            copies = max(2, min(32, -(-l2 // qw.nbytes)))
            ws = [qw] + [
                type(qw)(qw.kind, qw.shape, qw.data.clone(), None if qw.scale is None else qw.scale.clone(),
                         qw.group_size)
                for _ in range(copies - 1)
            ]  # fmt: skip
            base16 = torch.from_numpy(w_host).cuda().half().repeat(-(-n // 4096), 1)[:n].contiguous()
            w16 = [base16] + [base16.clone() for _ in range(copies - 1)]
            for m in (1, 512):
                x = torch.randn((m, k), device="cuda", dtype=torch.float16)
                ours = _gpu_graph_time(torch, [lambda w=w, x=x: ops.linear(x, w, backend=backend) for w in ws])
                peer = _gpu_graph_time(torch, [lambda w=w, x=x: torch.nn.functional.linear(x, w) for w in w16])
                tflops = 2.0 * m * n * k / ours / 1e12
                gbps = qw.nbytes / ours / 1e9
                pct = f"{100 * gbps / hbm:6.0f}" if m == 1 else f"{'':6}"
                gb = f"{gbps:8.0f}" if m == 1 else f"{'':8}"
                print(f"{f'M{m}xN{n}xK{k}':<24}{kind:<6}{backend:<12}{ours * 1e6:9.1f}{gb}{pct}{tflops:9.1f}"
                      f"{peer / ours:14.2f}x", flush=True)  # fmt: skip
                if kind == GPU_KINDS[0]:
                    pg = w16[0].nbytes / peer / 1e9
                    print(f"{f'M{m}xN{n}xK{k}':<24}{'f16':<6}{'torch_fp16':<12}{peer * 1e6:9.1f}"
                          f"{(f'{pg:8.0f}{100 * pg / hbm:6.0f}' if m == 1 else ' ' * 14)}"
                          f"{2.0 * m * n * k / peer / 1e12:9.1f}", flush=True)  # fmt: skip
            del ws, w16, base16
            if quick:
                break


def main() -> None:
    import platform

    import infercore
    from infercore.bench.runner import measure_bandwidth, run_cases

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--gpu", action="store_true", help="also run the GPU cases (needs a CUDA device)")
    ap.add_argument("--gpu-only", action="store_true", help="only the GPU cases")
    args = ap.parse_args()
    if args.gpu_only:
        gpu_main(args.quick)
        return
    if args.threads:
        infercore.set_num_threads(args.threads)
    info = infercore.system_info()["cpu"]
    bw = measure_bandwidth(args.quick)
    print(
        f"cpu: {info.get('brand', platform.processor())}  isa={infercore.get_isa()}  "
        f"threads={infercore.get_num_threads()}  read probe {bw:.1f} GB/s"
    )
    results = run_cases(cases(args.quick), bw, args.quick)
    hdr = f"{'shape':<22}{'kind':<6}{'impl':<15}{'ms':>9}{'GB/s':>8}{'%bw':>6}{'GFLOP/s':>9}  vs peers"
    print(hdr)
    peers = {(r.shape, r.impl): r.median_s for r in results if r.impl in PEERS}
    for r in results:
        if r.impl not in PEERS:
            for p in PEERS:
                if (r.shape, p) in peers:
                    r.speedup_vs[p] = peers[(r.shape, p)] / r.median_s
        gb = f"{r.gbps:8.1f}" if r.gbps else f"{'':8}"
        pct = f"{r.pct_bandwidth:6.0f}" if r.pct_bandwidth else f"{'':6}"
        sp = " ".join(f"{p}={v:.2f}x" for p, v in r.speedup_vs.items())
        print(f"{r.shape:<22}{r.dtype:<6}{r.impl:<15}{r.median_s * 1e3:9.3f}{gb}{pct}{r.gflops:9.1f}  {sp}")
    if args.gpu:
        gpu_main(args.quick)


if __name__ == "__main__":
    main()
