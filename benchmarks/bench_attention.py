"""Paged attention decode on the CPU: our kernel on a paged (shuffled blocks) cache, the same
kernel on a contiguous cache (identity block table: the paging overhead), and torch
scaled_dot_product_attention on dense float16 and float32 tensors (same threads, same run).

Those rows repeat one call on one cache, which then stays in the last-level cache when it fits
(a SmolLM2 S=16 x 4096 float16 cache is 50 MB). A served model runs its layers in turn, and each
layer's KV has been evicted by the others' by the time the next step reads it: the
"infercore-layers" row times the same call over LAYERS caches in turn (as many as a 32-layer
model has, or as many as LAYERS_BYTES holds), so every call reads its KV from DRAM. Its ratio to
the torch rows compares a cold cache with their warm one.

Bytes per call = the K and V bytes read: S x context x Hkv x D x 2 x itemsize (+ int8's float32
per-token scales). Decode reads every cached byte once with ~4 G flops per 2 bytes (float16), so
the bound is the harness's streaming-read bandwidth; fp8/int8 caches halve the bytes. Their
rows also show "float16 Nx": the same impl and shape on a float16 cache, same run (the issue's
fp8/int8 >= 1.7x float16 target).
"""

from __future__ import annotations

import os
import time

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none

BLOCK = 16
GEOMETRIES = {"smollm2": (9, 3, 64), "7b": (32, 8, 128)}
ITEMSIZE = {"float16": 2, "fp8": 1, "int8": 1}
LAYERS, LAYERS_BYTES = 32, 2 << 30
_live: dict[str, object] = {}  # the data of the case group being timed (one group in memory at a time)


def _fill(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    import ml_dtypes

    pool = rng.standard_normal(1 << 20).astype(np.float32)  # tiled: random enough for a bandwidth test
    n = int(np.prod(shape))
    if dtype == "int8":
        return np.resize(np.clip(np.rint(pool * 40), -127, 127).astype(np.int8), n).reshape(shape)
    npdt = np.float16 if dtype == "float16" else ml_dtypes.float8_e4m3fn
    return np.resize(pool.astype(npdt), n).reshape(shape)


def _one_cache(s: int, ctx: int, hkv: int, d: int, dtype: str, paged: bool, rng: np.random.Generator) -> dict:
    nblk = (ctx + BLOCK - 1) // BLOCK
    nb = s * nblk
    kc = _fill((nb, BLOCK, hkv, d), dtype, rng)
    vc = _fill((nb, BLOCK, hkv, d), dtype, rng)
    order = rng.permutation(nb) if paged else np.arange(nb)
    args = {"k_cache": kc, "v_cache": vc, "block_tables": order.reshape(s, nblk).astype(np.int32),
            "seq_lens": np.full(s, ctx, np.int32)}
    if dtype == "int8":
        args["k_scale"] = np.full((nb, BLOCK, hkv), 0.02, np.float32)
        args["v_scale"] = np.full((nb, BLOCK, hkv), 0.02, np.float32)
    elif dtype == "fp8":
        args["k_scale"] = args["v_scale"] = 0.01
    return args


def _data(key: str, s: int, ctx: int, hq: int, hkv: int, d: int, dtype: str, paged: bool,
          layers: int = 1) -> dict:
    """Build (once per key, dropping the previous group's arrays) the inputs of one case: the
    query and `layers` caches, used in turn."""
    if key in _live:
        return _live[key]
    _live.clear()
    rng = np.random.default_rng(0)
    caches = [_one_cache(s, ctx, hkv, d, dtype, paged, rng) for _ in range(layers)]
    _live[key] = {"q": rng.standard_normal((s, hq, d)).astype(np.float32), "caches": caches, "next": 0}
    return _live[key]


def _torch_data(key: str, s: int, ctx: int, hq: int, hkv: int, d: int, dtype: str) -> dict:
    torch = torch_or_none()
    if key in _live:
        return _live[key]
    _live.clear()
    g = torch.Generator().manual_seed(0)
    dt = getattr(torch, dtype)
    _live[key] = {
        "q": torch.randn(s, hq, 1, d, generator=g).to(dt),
        "k": torch.randn(s, hkv, ctx, d, generator=g).to(dt),
        "v": torch.randn(s, hkv, ctx, d, generator=g).to(dt),
    }
    return _live[key]


def _cases_for(geo: str, s: int, ctx: int, dtype: str) -> list[Case]:
    hq, hkv, d = GEOMETRIES[geo]
    shape = f"{geo} S={s} ctx={ctx}"
    nbytes = s * ctx * hkv * 2 * (d * ITEMSIZE[dtype] + (4 if dtype == "int8" else 0))
    layers = min(LAYERS, max(2, -(-LAYERS_BYTES // nbytes)))
    out = []
    for impl, paged, nl in (("infercore", True, 1), ("contiguous", False, 1), ("infercore-layers", True, layers)):
        key = f"{shape}/{dtype}/{impl}"

        def run(key=key, paged=paged, nl=nl) -> None:
            x = _data(key, s, ctx, hq, hkv, d, dtype, paged, nl)
            args = x["caches"][x["next"]]
            x["next"] = (x["next"] + 1) % nl
            infercore.ops.paged_attention_decode(x["q"], **args)

        extra = {"block_size": BLOCK} if nl == 1 else {"block_size": BLOCK, "layers": nl}
        out.append(Case("attention", "paged_attention_decode", shape, dtype, impl, run, bytes=nbytes,
                        setup=run, extra=extra, vs_dtype=None if dtype == "float16" else "float16"))
    torch = torch_or_none()
    if torch is not None and dtype == "float16":
        import torch.nn.functional as F

        # "torch": dense float16 tensors as the cache holds them; "torch_fp32": dense float32
        # (twice the bytes, but CPU SDPA's fastest path), the stronger of the two peers.
        for impl, tdt in (("torch", "float16"), ("torch_fp32", "float32")):
            key = f"{shape}/{impl}"

            def run_torch(key=key, tdt=tdt) -> None:
                x = _torch_data(key, s, ctx, hq, hkv, d, tdt)
                F.scaled_dot_product_attention(x["q"], x["k"], x["v"], enable_gqa=True)

            out.append(Case("attention", "paged_attention_decode", shape, dtype, impl, run_torch, bytes=nbytes,
                            setup=run_torch))
    return out


def cases(quick: bool) -> list[Case]:
    out: list[Case] = []
    for geo in GEOMETRIES:
        for s in (1, 16, 64):
            for ctx in (512, 4096):
                if quick and s == 64 and (geo == "7b" or ctx == 4096):
                    continue  # >= 200 MB per cache: full runs only
                for dtype in ("float16", "fp8", "int8"):
                    out += _cases_for(geo, s, ctx, dtype)
    out += gpu_cases(quick)
    return out


# ------------------------------------------------------------------------------------ GPU
# Only where a CUDA device and the _C_cuda module are present (50 cases with --quick, ~30 s). The
# "infercore" row times the CUDA decode launcher itself (pointers prepared once, as an engine would
# hold them), "contiguous" the same kernel on an identity block table (the paging overhead, at
# S=16 ctx=4096), "torch" scaled_dot_product_attention on dense float16 [S, Hkv, ctx, D] GPU
# tensors (enable_gqa). Each timed call runs GPU_INNER launches
# and synchronises; extra holds device-event numbers from a CUDA graph of GPU_INNER launches
# (us/call, GB/s of K+V read, % of the HBM bandwidth a device-to-device copy reaches in this run)
# and op_us, one synchronised call of the public ops.paged_attention_decode (Python checks and
# index uploads included). The harness's own "%BW" column is against the CPU probe: ignore it here.
GPU_INNER = 20
_GPU_CODE = {"float16": 1, "fp8": 3, "int8": 4}
_hbm: dict[str, float] = {}


def _cuda() -> tuple:
    torch = torch_or_none()
    if torch is None or not torch.cuda.is_available():
        return None, None
    from infercore._native import cuda_module

    mod = cuda_module()
    return (torch, mod) if mod is not None else (None, None)


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def hbm_copy_gbps(torch) -> float:
    """Device-to-device copy of 1 GiB: (bytes read + bytes written) / time, median of 8."""
    if "gbps" not in _hbm:
        x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
        y = torch.empty_like(x)
        ms = []
        for _ in range(10):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            y.copy_(x)
            e1.record()
            e1.synchronize()
            ms.append(e0.elapsed_time(e1))
        _hbm["gbps"] = 2 * x.numel() * 4 / (_median(ms[2:]) / 1e3) / 1e9
        del x, y
    return _hbm["gbps"]


def _device_stats(torch, launch, nbytes: float) -> dict:
    """Per-call device time of `launch` from a CUDA graph of GPU_INNER calls (a plain loop when
    capture fails), median of 7 replays."""
    launch()
    torch.cuda.synchronize()
    run = None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            launch()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(GPU_INNER):
                launch()
        run, how = g.replay, "graph"
    except Exception:  # capture is an optimisation: fall back to plain launches
        torch.cuda.synchronize()

        def run() -> None:
            for _ in range(GPU_INNER):
                launch()

        how = "loop"
    ms = []
    for _ in range(7):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        run()
        e1.record()
        e1.synchronize()
        ms.append(e0.elapsed_time(e1) / GPU_INNER)
    per = _median(ms) / 1e3
    hbm = hbm_copy_gbps(torch)
    gbps = nbytes / per / 1e9
    return {"us_per_call": round(per * 1e6, 2), "gbps_device": round(gbps, 1), "pct_hbm": round(100 * gbps / hbm, 1),
            "hbm_copy_gbps": round(hbm, 1), "timing": how}


def _gpu_data(key: str, s: int, ctx: int, hq: int, hkv: int, d: int, dtype: str, impl: str) -> dict:
    torch, mod = _cuda()
    if key in _live:
        return _live[key]
    _live.clear()
    torch.cuda.empty_cache()
    g = torch.Generator(device="cuda").manual_seed(0)
    x: dict = {"q": torch.randn(s, hq, d, device="cuda", generator=g)}
    if impl == "torch":
        x["tq"] = x["q"].to(torch.float16).reshape(s, hq, 1, d)
        x["tk"] = torch.randn(s, hkv, ctx, d, device="cuda", generator=g, dtype=torch.float16)
        x["tv"] = torch.randn(s, hkv, ctx, d, device="cuda", generator=g, dtype=torch.float16)
        _live[key] = x
        return x
    nblk = (ctx + BLOCK - 1) // BLOCK
    nb = s * nblk
    shape = (nb, BLOCK, hkv, d)
    kv = []
    for _ in range(2):
        r = torch.randn(shape, device="cuda", generator=g)
        if dtype == "int8":
            kv.append(torch.clamp(torch.round(r * 40), -127, 127).to(torch.int8))
        elif dtype == "fp8":
            kv.append((r * 100).to(torch.float8_e4m3fn))
        else:
            kv.append(r.to(torch.float16))
        del r
    x["kc"], x["vc"] = kv
    paged = impl in ("infercore", "cuda-cores", "tile32", "half-splits")
    order = torch.randperm(nb, device="cuda", generator=g) if paged else torch.arange(nb, device="cuda")
    x["bt"] = order.to(torch.int32).reshape(s, nblk).contiguous()
    x["lens"] = torch.full((s,), ctx, dtype=torch.int32, device="cuda")
    ks = vs = 1.0
    ksp = vsp = 0
    if dtype == "int8":
        x["ks"] = torch.full(shape[:3], 0.02, device="cuda")
        x["vs"] = torch.full(shape[:3], 0.02, device="cuda")
        ksp, vsp = x["ks"].data_ptr(), x["vs"].data_ptr()
        x["op_scales"] = {"k_scale": x["ks"], "v_scale": x["vs"]}
    elif dtype == "fp8":
        ks = vs = 0.01
        x["op_scales"] = {"k_scale": ks, "v_scale": vs}
    else:
        x["op_scales"] = {}
    dev = torch.cuda.current_device()
    splits = int(mod.paged_attention_decode_splits(s, hq, hkv, ctx, dev))
    if impl == "half-splits":  # longer key ranges per block (A/B of the split heuristic)
        splits = max(1, splits // 2)
    ws_n = int(mod.paged_attention_decode_workspace(s, hq, d, splits))
    x["ws"] = torch.empty(max(ws_n, 4), dtype=torch.float32, device="cuda")
    x["out"] = torch.empty(s, hq, d, dtype=torch.float32, device="cuda")
    cache = (x["kc"].data_ptr(), x["vc"].data_ptr(), ksp, vsp, ks, vs, _GPU_CODE[dtype], nb, BLOCK, hkv, d)
    scale = 1.0 / float(np.sqrt(d))

    def launch() -> None:
        mod.paged_attention(False, x["q"].data_ptr(), 0, x["out"].data_ptr(), s, s, hq, x["bt"].data_ptr(), nblk,
                            x["lens"].data_ptr(), 0, 0, scale, 0, splits, x["ws"].data_ptr(), ws_n, cache, 0,
                            torch.cuda.current_stream().cuda_stream)

    x["launch"], x["splits"] = launch, splits
    _live[key] = x
    return x


def _op_us(torch, x: dict) -> float:
    bt, lens = x["bt"].cpu().numpy(), x["lens"].cpu().numpy()  # host indices: no device-to-host copy per call
    us = []
    for _ in range(5):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        infercore.ops.paged_attention_decode(x["q"], x["kc"], x["vc"], bt, lens, **x["op_scales"])
        torch.cuda.synchronize()
        us.append((time.perf_counter() - t0) * 1e6)
    return round(_median(us), 1)


# A/B rows: the same call under a kernel switch read by the CUDA launcher
_ENV_IMPLS = {"cuda-cores": ("INFERCORE_CUDA_ATTN_MMA", "0"), "tile32": ("INFERCORE_CUDA_ATTN_MMA_TILE", "32")}


def gpu_cases(quick: bool) -> list[Case]:
    torch, _mod = _cuda()
    if torch is None:
        return []
    import torch.nn.functional as F

    out: list[Case] = []
    for geo, (hq, hkv, d) in GEOMETRIES.items():
        for s in (1, 16, 64):
            for ctx in (512, 4096):
                shape = f"gpu {geo} S={s} ctx={ctx}"
                for dtype in ("float16", "fp8", "int8"):
                    nbytes = s * ctx * hkv * 2 * (d * ITEMSIZE[dtype] + (4 if dtype == "int8" else 0))
                    impls = ["infercore"]
                    if s == 16 and ctx == 4096 and (dtype == "float16" or not quick):
                        impls.append("contiguous")  # the paging overhead, at the target shape
                    if ctx == 4096 and s >= 16 and not quick:
                        impls.append("cuda-cores")  # INFERCORE_CUDA_ATTN_MMA=0: the CUDA-core kernel (A/B)
                        if dtype != "float16":
                            impls.append("tile32")  # INFERCORE_CUDA_ATTN_MMA_TILE=32: 32-key tiles (A/B)
                    if ctx == 4096 and s <= 16 and not quick:
                        impls.append("half-splits")  # half the split-K blocks, each twice as long (A/B)
                    if dtype == "float16":
                        impls.append("torch")
                    for impl in impls:
                        key = f"{shape}/{dtype}/{impl}"

                        def get(key=key, dtype=dtype, impl=impl, s=s, ctx=ctx, hq=hq, hkv=hkv, d=d) -> dict:
                            return _gpu_data(key, s, ctx, hq, hkv, d, dtype, impl)

                        if impl == "torch":
                            def launch(get=get) -> None:
                                x = get()
                                F.scaled_dot_product_attention(x["tq"], x["tk"], x["tv"], enable_gqa=True)
                        elif impl in _ENV_IMPLS:
                            def launch(get=get, env=_ENV_IMPLS[impl]) -> None:
                                os.environ[env[0]] = env[1]
                                try:
                                    get()["launch"]()
                                finally:
                                    del os.environ[env[0]]
                        else:
                            def launch(get=get) -> None:
                                get()["launch"]()

                        def run(launch=launch) -> None:
                            for _ in range(GPU_INNER):
                                launch()
                            torch.cuda.synchronize()

                        def after(launch=launch, get=get, impl=impl, nbytes=nbytes) -> dict:
                            st = _device_stats(torch, launch, nbytes)
                            if impl != "torch":
                                st["splits"] = get()["splits"]
                            if impl in ("infercore", "contiguous"):
                                st["op_us"] = _op_us(torch, get())
                            return st

                        out.append(Case("attention", "paged_attention_decode", shape, dtype, impl, run,
                                        backend="cuda", bytes=GPU_INNER * nbytes, setup=get, after=after,
                                        extra={"block_size": BLOCK, "calls_per_timing": GPU_INNER}))
    return out


def test_decode_smollm2_16x4096(benchmark):  # pytest-benchmark entry: `pytest benchmarks --benchmark-only`
    c = next(c for c in cases(True) if c.impl == "infercore" and c.shape == "smollm2 S=16 ctx=4096"
             and c.dtype == "float16")
    c.setup()
    benchmark(c.fn)


# ------------------------------------------------------------------------------ Triton (GPU)
def _cuda_copy_gbps(torch) -> float:
    """Device copy bandwidth (bytes read + written), the ceiling the Triton rows are held to."""
    import triton.testing

    src = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=25, rep=200, return_mode="median")
    return 2 * (1 << 30) / (ms * 1e-3) / 1e9


def triton_cases(quick: bool = True, *, device: str = "cuda", seqs: int = 16, ctx: int = 4096) -> list[Case]:
    """Decode S=16, context 4096, both geometries, float16/fp8/int8 caches through the Triton
    kernels on a CUDA device ([] without one). Rows: "infercore" = ops.paged_attention_decode
    (backend="triton", host checks included, timed with a synchronize), "contiguous" = the same
    on an identity block table, "torch_sdpa" = dense float16 SDPA on the GPU. after() adds the
    kernel-only median (triton.testing.do_bench: CUDA events, L2 flushed) as kernel_us /
    kernel_gbps and its % of the device copy bandwidth measured in the same run.
    device="cpu" (with TRITON_INTERPRET=1, small seqs/ctx) only smoke-tests this code."""
    torch = torch_or_none()
    if torch is None or (device == "cuda" and not torch.cuda.is_available()):
        return []
    import triton.testing
    from infercore.kernels import attention as KA

    s, dev = seqs, device

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()
    copy_bw: list[float] = []
    out: list[Case] = []
    for geo, (hq, hkv, d) in GEOMETRIES.items():
        for dtype in ("float16", "fp8", "int8"):
            shape = f"{geo} S={s} ctx={ctx} [triton]"
            nbytes = s * ctx * hkv * 2 * (d * ITEMSIZE[dtype] + (4 if dtype == "int8" else 0))
            nblk = (ctx + BLOCK - 1) // BLOCK
            nb = s * nblk

            def data(paged: bool, hq=hq, hkv=hkv, d=d, dtype=dtype, nblk=nblk, nb=nb) -> dict:
                g = torch.Generator(device=dev).manual_seed(0)
                shp = (nb, BLOCK, hkv, d)
                if dtype == "int8":
                    kc = torch.randint(-127, 128, shp, generator=g, device=dev, dtype=torch.int8)
                    vc = torch.randint(-127, 128, shp, generator=g, device=dev, dtype=torch.int8)
                    sc = {"k_scale": torch.full(shp[:3], 0.02, device=dev),
                          "v_scale": torch.full(shp[:3], 0.02, device=dev)}
                else:
                    dt = torch.float16 if dtype == "float16" else torch.float8_e4m3fn
                    kc = torch.randn(shp, generator=g, device=dev).to(dt)
                    vc = torch.randn(shp, generator=g, device=dev).to(dt)
                    sc = {"k_scale": 1.0, "v_scale": 1.0}
                order = torch.randperm(nb, generator=g, device=dev) if paged else torch.arange(nb, device=dev)
                return {"q": torch.randn(s, hq, d, generator=g, device=dev), "k": kc, "v": vc, "sc": sc,
                        "bt": order.reshape(s, nblk).to(torch.int32), "lens": torch.full((s,), ctx, dtype=torch.int32,
                                                                                         device=dev)}

            for impl, paged in (("infercore", True), ("contiguous", False)):
                box: dict = {}

                def setup(box=box, paged=paged, data=data) -> None:
                    if not box:
                        _live.clear()
                        box.update(data(paged))
                        _live["triton"] = box

                def run(box=box) -> None:
                    infercore.ops.paged_attention_decode(box["q"], box["k"], box["v"], box["bt"], box["lens"],
                                                         backend="triton", **box["sc"])
                    sync()

                def after(box=box, nbytes=nbytes, hkv=hkv, dtype=dtype) -> dict:
                    kind = {"float16": "float16", "fp8": "float8_e4m3fn", "int8": "int8"}[dtype]
                    splits = KA.default_splits(s, hkv, ctx, box["q"].device)
                    ms = triton.testing.do_bench(
                        lambda: KA.paged_attention_decode(box["q"], box["k"], box["v"], kind, box["bt"], box["lens"],
                                                          scale=0.125, num_splits=splits, **box["sc"]),
                        warmup=25, rep=200, return_mode="median")
                    if not copy_bw:
                        copy_bw.append(_cuda_copy_gbps(torch) if dev == "cuda" else float("nan"))
                    gbps = nbytes / (ms * 1e-3) / 1e9
                    box.clear()
                    return {"kernel_us": round(ms * 1e3, 1), "kernel_gbps": round(gbps, 1), "splits": splits,
                            "copy_gbps": round(copy_bw[0], 1), "pct_of_copy_bw": round(100 * gbps / copy_bw[0], 1),
                            "device": torch.cuda.get_device_name() if dev == "cuda" else dev}

                out.append(Case("attention", "paged_attention_decode", shape, dtype, impl, run, backend="triton",
                                bytes=nbytes, setup=setup, after=after, extra={"block_size": BLOCK}))
            if dtype == "float16":
                import torch.nn.functional as F

                box: dict = {}

                def setup_sdpa(box=box, hq=hq, hkv=hkv, d=d) -> None:
                    if not box:
                        _live.clear()
                        g = torch.Generator(device=dev).manual_seed(0)
                        box.update(q=torch.randn(s, hq, 1, d, generator=g, device=dev, dtype=torch.float16),
                                   k=torch.randn(s, hkv, ctx, d, generator=g, device=dev, dtype=torch.float16),
                                   v=torch.randn(s, hkv, ctx, d, generator=g, device=dev, dtype=torch.float16))
                        _live["sdpa"] = box

                def run_sdpa(box=box) -> None:
                    F.scaled_dot_product_attention(box["q"], box["k"], box["v"], enable_gqa=True)
                    sync()

                def after_sdpa(box=box) -> dict:
                    box.clear()
                    return {}

                out.append(Case("attention", "paged_attention_decode", shape, dtype, "torch_sdpa", run_sdpa,
                                backend="cuda", bytes=nbytes, setup=setup_sdpa, after=after_sdpa))
    return out


def gpu_main(quick: bool) -> None:
    """The GPU rows only (CUDA kernels, then Triton), one line each with their device numbers."""
    from infercore.bench.runner import run_cases

    rows = run_cases(gpu_cases(quick) + triton_cases(quick), 0.0, quick)
    if not rows:
        print("gpu: no CUDA device (or no _C_cuda), GPU cases skipped")
    for r in rows:
        print(f"{r.op:<10}{r.shape:<28}{r.dtype:<9}{r.impl:<16}{r.median_s * 1e6:10.1f} us  {r.extra}")


if __name__ == "__main__":
    from infercore.bench.runner import gpu_only_entry

    gpu_only_entry("attention", __doc__, gpu_main)
