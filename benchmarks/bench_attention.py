"""Paged attention decode on the CPU: our kernel on a paged (shuffled blocks) cache, the same
kernel on a contiguous cache (identity block table: the paging overhead), and torch
scaled_dot_product_attention on dense float16 and float32 tensors (same threads, same run).

Bytes per call = the K and V bytes read: S x context x Hkv x D x 2 x itemsize (+ int8's float32
per-token scales). Decode reads every cached byte once with ~4 G flops per 2 bytes (float16), so
the bound is the harness's streaming-read bandwidth; fp8/int8 caches halve the bytes.
"""

from __future__ import annotations

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none

BLOCK = 16
GEOMETRIES = {"smollm2": (9, 3, 64), "7b": (32, 8, 128)}
ITEMSIZE = {"float16": 2, "fp8": 1, "int8": 1}
_live: dict[str, object] = {}  # the data of the case group being timed (one group in memory at a time)


def _fill(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    import ml_dtypes

    pool = rng.standard_normal(1 << 20).astype(np.float32)  # tiled: random enough for a bandwidth test
    n = int(np.prod(shape))
    if dtype == "int8":
        return np.resize(np.clip(np.rint(pool * 40), -127, 127).astype(np.int8), n).reshape(shape)
    npdt = np.float16 if dtype == "float16" else ml_dtypes.float8_e4m3fn
    return np.resize(pool.astype(npdt), n).reshape(shape)


def _data(key: str, s: int, ctx: int, hq: int, hkv: int, d: int, dtype: str, paged: bool) -> dict:
    """Build (once per key, dropping the previous group's arrays) the inputs of one case."""
    if key in _live:
        return _live[key]
    _live.clear()
    rng = np.random.default_rng(0)
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
    _live[key] = {"q": rng.standard_normal((s, hq, d)).astype(np.float32), "args": args}
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
    out = []
    for impl, paged in (("infercore", True), ("contiguous", False)):
        key = f"{shape}/{dtype}/{impl}"

        def run(key=key, paged=paged) -> None:
            x = _data(key, s, ctx, hq, hkv, d, dtype, paged)
            infercore.ops.paged_attention_decode(x["q"], **x["args"])

        out.append(Case("attention", "paged_attention_decode", shape, dtype, impl, run, bytes=nbytes,
                        setup=run, extra={"block_size": BLOCK}))
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
