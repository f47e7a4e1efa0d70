"""silu_and_mul and rotary_embedding (the Llama decoder's gated activation and RoPE) against torch
(`F.silu(g) * u`, and a rotate-half / interleaved RoPE of the same packed layout) and numpy (the
model's current forms: `g / (1 + exp(-g)) * u` and Rope.apply), same threads, same run.

Bytes per call. silu_and_mul: read x [rows, 2I] + write [rows, I] (12 bytes per output in float32,
6 in bfloat16). RoPE: read + write the rotated heads in place (8 bytes per rotated element; the
cos/sin rows, shared by every head of a row, are left out). "% of bandwidth" is of the harness's
multi-threaded read probe measured in the same run; shapes above the last-level cache are the ones
where that bound applies (csrc/cpu/silu_and_mul_impl.h has the napkin math: large float32 inputs
are memory bound, the decoder's own sizes stay in cache and run at compute speed).
Shapes: SmolLM2-135M decode (1 token) and a 512-token prefill (I = 1536; 9 q + 3 kv heads of 64),
and a Llama-8B-like layer (I = 14336; 32 q + 8 kv heads of 128) that does not fit in the caches.

On a machine with a CUDA device (and only there) `--gpu` (or `--gpu-only`) adds the GPU table:
both ops through backend="cuda" (and "triton") vs torch, timed as CUDA-graph replays over enough
input copies to exceed the L2 cache, in GB/s and % of a device-to-device copy measured in the same
run. RoPE is captured with check_positions=False (the position check reads back to the host).

Run: python -m infercore.benchmarks.bench_activation [--quick] [--threads N] [--gpu | --gpu-only]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import infercore
from infercore.bench import Case
from infercore.models.rope import Rope

from ._peers import torch_or_none
from .bench_linear import _gpu_graph_time, _hbm_copy_gbps

SILU_QUICK = ((1, 1536), (512, 1536), (1024, 8192))
SILU_FULL = (*SILU_QUICK, (4096, 14336))
# (tokens, rotated heads, extra (v) heads, head_dim, interleaved)
ROPE_QUICK = ((1, 12, 3, 64, True), (512, 12, 3, 64, True), (2048, 40, 8, 128, False))
ROPE_FULL = (*ROPE_QUICK, (8192, 40, 8, 128, False))


def _numpy_silu_and_mul(x: np.ndarray) -> np.ndarray:
    """The model's current numpy form (models/llama.py)."""
    inter = x.shape[-1] // 2
    g = x[..., :inter]
    act = g / (1.0 + np.exp(-g))
    act *= x[..., inter:]
    return act


def torch_silu_and_mul(torch: Any, x: Any) -> Any:
    inter = x.shape[-1] // 2
    return torch.nn.functional.silu(x[..., :inter]) * x[..., inter:]


def torch_rope(torch: Any, x: Any, pos: Any, cos: Any, sin: Any, heads: int, interleaved: bool) -> None:
    """RoPE of the same packed layout in torch ops (the peer): rotate heads [0, heads) in place."""
    t, d = x.shape[0], 2 * cos.shape[1]
    v = x[:, : heads * d].view(t, heads, d)
    c, s = cos[pos][:, None, :], sin[pos][:, None, :]
    if interleaved:
        a, b = v[..., 0::2], v[..., 1::2]
        out = torch.stack((a * c - b * s, b * c + a * s), dim=-1).flatten(-2)
    else:
        a, b = v[..., : d // 2], v[..., d // 2 :]
        out = torch.cat((a * c - b * s, b * c + a * s), dim=-1)
    v.copy_(out)


def _silu_cases(rows: int, inter: int, rng: np.random.Generator) -> list[Case]:
    torch = torch_or_none()
    x = (rng.standard_normal((rows, 2 * inter), dtype=np.float32) * 2).astype(np.float32)
    shape = f"{rows}x{2 * inter}"
    nbytes = 3.0 * rows * inter * 4
    out = np.empty((rows, inter), np.float32)
    silu = infercore.ops.silu_and_mul
    cases = [
        Case("activation", "silu_and_mul", shape, "float32", "infercore", lambda: silu(x), bytes=nbytes),
        Case("activation", "silu_and_mul", shape, "float32", "numpy", lambda: _numpy_silu_and_mul(x), bytes=nbytes),
        Case("activation", "silu_and_mul(out=)", shape, "float32", "infercore", lambda: silu(x, out=out),
             bytes=nbytes),
    ]  # fmt: skip
    if torch is not None:
        tx = torch.from_numpy(x)
        tb = tx.to(torch.bfloat16)
        cases += [
            Case("activation", "silu_and_mul", shape, "float32", "torch", lambda: torch_silu_and_mul(torch, tx),
                 bytes=nbytes),
            Case("activation", "silu_and_mul", shape, "bfloat16", "infercore", lambda: silu(tb), bytes=nbytes / 2),
            Case("activation", "silu_and_mul", shape, "bfloat16", "torch", lambda: torch_silu_and_mul(torch, tb),
                 bytes=nbytes / 2),
        ]  # fmt: skip
    return cases


def _rope_cases(t: int, heads: int, extra: int, d: int, interleaved: bool, rng: np.random.Generator) -> list[Case]:
    torch = torch_or_none()
    rope = Rope(d, 1e5, t + 16, "interleaved" if interleaved else "neox")
    x = rng.standard_normal((t, (heads + extra) * d), dtype=np.float32)
    pos = np.arange(t, dtype=np.int64) + 7
    shape = f"{t}x{heads}+{extra}x{d}" + ("i" if interleaved else "n")
    nbytes = 2.0 * t * heads * d * 4
    view = x[:, : heads * d].reshape(t, heads, d)
    rot = infercore.ops.rotary_embedding
    cases = [
        Case("activation", "rope", shape, "float32", "infercore",
             lambda: rot(x, pos, rope.cos, rope.sin, heads=heads, interleaved=interleaved), bytes=nbytes),
        Case("activation", "rope", shape, "float32", "numpy", lambda: rope.apply(view, pos), bytes=nbytes),
    ]  # fmt: skip
    if torch is not None:
        tx, tp = torch.from_numpy(x), torch.from_numpy(pos)
        tc, ts = torch.from_numpy(rope.cos), torch.from_numpy(rope.sin)
        cases.append(Case("activation", "rope", shape, "float32", "torch",
                          lambda: torch_rope(torch, tx, tp, tc, ts, heads, interleaved), bytes=nbytes))  # fmt: skip
    return cases


def cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    out: list[Case] = []
    for rows, inter in SILU_QUICK if quick else SILU_FULL:
        out += _silu_cases(rows, inter, rng)
    for spec in ROPE_QUICK if quick else ROPE_FULL:
        out += _rope_cases(*spec, rng)
    return out


# ---------------------------------------------------------------------------------------- GPU
GPU_SILU = ((1, 14336), (64, 14336), (4096, 14336), (16384, 14336))
GPU_ROPE = ((1, 40, 8, 128, False), (4096, 40, 8, 128, False), (4096, 40, 8, 128, True), (32768, 40, 8, 128, False))


def gpu_main(quick: bool) -> None:
    import torch

    from infercore import ops
    from infercore._native import cuda_module


    if not torch.cuda.is_available():
        print("gpu: no CUDA device, GPU cases skipped")
        return
    backends = (["cuda"] if cuda_module() is not None else []) + ["triton"]
    props = torch.cuda.get_device_properties(0)
    hbm = _hbm_copy_gbps(torch)
    print(f"gpu: {props.name}  SMs={props.multi_processor_count}  d2d copy {hbm:.0f} GB/s  backends={backends}",
          flush=True)  # fmt: skip
    l2 = 256 << 20  # rotate input copies until a pass touches >= 256 MB (H100 L2: 50 MB)
    print(f"{'op':<14}{'shape':<22}{'dtype':<10}{'impl':<8}{'us':>9}{'GB/s':>8}{'%copy':>7}{'vs torch':>10}")

    def row(op: str, shape: str, dt: str, impl: str, sec: float, nbytes: float, peer: float | None) -> None:
        gbps = nbytes / sec / 1e9
        vs = f"{peer / sec:9.2f}x" if peer else f"{'':10}"
        print(f"{op:<14}{shape:<22}{dt:<10}{impl:<8}{sec * 1e6:9.1f}{gbps:8.0f}{100 * gbps / hbm:7.0f}{vs}", flush=True)

    for rows, inter in GPU_SILU[:3] if quick else GPU_SILU:
        for dt in (torch.bfloat16, torch.float16, torch.float32):
            nbytes = 3.0 * rows * inter * torch.finfo(dt).bits / 8
            copies = max(2, min(64, -(-l2 // int(nbytes))))
            xs = [torch.randn(rows, 2 * inter, device="cuda").to(dt) for _ in range(copies)]
            peer = _gpu_graph_time(torch, [lambda x=x: torch_silu_and_mul(torch, x) for x in xs])
            name = str(dt).removeprefix("torch.")
            row("silu_and_mul", f"{rows}x{2 * inter}", name, "torch", peer, nbytes, None)
            for b in backends:
                sec = _gpu_graph_time(torch, [lambda x=x, b=b: ops.silu_and_mul(x, backend=b) for x in xs])
                row("silu_and_mul", f"{rows}x{2 * inter}", name, b, sec, nbytes, peer)
            del xs
    for t, heads, extra, d, il in GPU_ROPE[:3] if quick else GPU_ROPE:
        _gpu_rope(torch, ops, backends, row, l2, t, heads, extra, d, il)


def _gpu_rope(torch: Any, ops: Any, backends: list[str], row: Any, l2: int, t: int, heads: int, extra: int, d: int,
              il: bool) -> None:  # fmt: skip
    rope = Rope(d, 1e5, t + 16, "interleaved" if il else "neox")
    cos, sin = torch.from_numpy(rope.cos).cuda(), torch.from_numpy(rope.sin).cuda()
    pos = torch.arange(t, device="cuda") + 7
    nbytes = 2.0 * t * heads * d * 4
    copies = max(2, min(64, -(-l2 // int(nbytes))))
    xs = [torch.randn(t, (heads + extra) * d, device="cuda") for _ in range(copies)]
    shape = f"{t}x{heads}+{extra}x{d}" + ("i" if il else "n")
    peer = _gpu_graph_time(torch, [lambda x=x: torch_rope(torch, x, pos, cos, sin, heads, il) for x in xs])
    row("rope", shape, "float32", "torch", peer, nbytes, None)
    for b in backends:
        fns = [lambda x=x, b=b: ops.rotary_embedding(x, pos, cos, sin, heads=heads, interleaved=il, backend=b,
                                                     check_positions=False) for x in xs]  # fmt: skip
        row("rope", shape, "float32", b, _gpu_graph_time(torch, fns), nbytes, peer)


def main() -> None:
    import platform

    from infercore.bench import report
    from infercore.bench.runner import measure_bandwidth, run_cases

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    results = run_cases(cases(args.quick), bw, args.quick)
    cpu = f"{info.get('brand', platform.processor())} isa={infercore.get_isa()} threads={infercore.get_num_threads()}"
    print(report.table(results, bw, cpu))
    if args.gpu:
        gpu_main(args.quick)


if __name__ == "__main__":
    main()


def test_silu_and_mul_prefill_shape(benchmark):  # pytest-benchmark entry: `pytest benchmarks --benchmark-only`
    c = next(c for c in cases(True) if c.op == "silu_and_mul" and c.shape == "512x3072" and c.impl == "infercore")
    benchmark(c.fn)
