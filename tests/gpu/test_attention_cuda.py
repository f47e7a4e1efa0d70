"""CUDA paged attention (csrc/cuda/attention_decode.cu, attention_prefill.cu) and reshape_and_cache
(csrc/cuda/kv_cache.cu) against the float64 dense reference and the CPU backend, with shuffled
block tables, every cache dtype, GQA shapes and bad inputs. Skipped without a GPU."""

from __future__ import annotations

import contextlib

import ml_dtypes
import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.ops import reference as ref

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "int8")
TORCH_DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
            "float8_e4m3fn": torch.float8_e4m3fn, "int8": torch.int8}
NP_DT = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
         "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "int8": np.int8}
# End to end (unit-variance float32 values -> cache dtype -> attention) against the unquantized
# float64 reference, max abs error, contexts of >= 64 tokens: the budgets, except
# bfloat16 (8-bit mantissa), which gets the CPU tests' 1e-2 (tests/ops/test_attention.py E2E).
# fp8: e4m3's 3 mantissa bits round each cached value by up to 1/16 of its size; the worst of the 54
# decode configurations on an H200 was 0.069, hence 0.08 (STORED is the check on the kernel itself).
E2E = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2, "float8_e4m3fn": 8e-2, "int8": 3e-2}
# Against the reference on the values the cache actually stores: float32 accumulation only.
STORED = 3e-5


@contextlib.contextmanager
def cpu_float_path():
    """The CPU backend at a level whose int8/fp8 kernels accumulate in float32 like the CUDA ones:
    at the avx512 level they round q and p (int16 / float16 dot products; tests/ops/test_attention.py
    INT8_DOTS, FP8_DOTS), which puts them ~1e-3 away, far outside the 2e-5 these comparisons hold."""
    old = infercore.get_isa()
    if old == "avx512":
        infercore.set_isa("avx2")
    try:
        yield
    finally:
        infercore.set_isa(old)


def _np(t, dt: str) -> np.ndarray:
    """A device cache's stored values as a numpy array of the matching (ml_dtypes) type."""
    u = t.detach().cpu().contiguous()
    if dt == "bfloat16":
        return u.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if dt == "float8_e4m3fn":
        return u.view(torch.uint8).numpy().view(ml_dtypes.float8_e4m3fn)
    return u.numpy()


class DevPaged:
    """A randomly filled paged cache on the GPU (written by the CUDA reshape_and_cache), with its
    shuffled, non-contiguous block tables and the exact values it was written from."""

    def __init__(self, rng, lens, bs, hkv, d, dt, shared_prefix_blocks=0, extra_cols=2):
        self.bs, self.hkv, self.d, self.dt = bs, hkv, d, dt
        need = [(n + bs - 1) // bs for n in lens]
        self.nb = sum(need) + 3
        perm = rng.permutation(self.nb).astype(np.int32)
        self.bt = np.full((len(lens), max(need) + extra_cols), -7, np.int32)  # unused entries are garbage
        nxt = shared_prefix_blocks
        for s, n in enumerate(need):
            for j in range(n):
                self.bt[s, j] = perm[j] if j < shared_prefix_blocks else perm[nxt]
                nxt += 0 if j < shared_prefix_blocks else 1
        self.lens = np.asarray(lens, np.int32)
        shape = (self.nb, bs, hkv, d)
        slots = sorted({int(self.bt[s, p // bs]) * bs + p % bs for s, n in enumerate(lens) for p in range(n)})
        self.slots = np.asarray(slots, np.int64)
        self.k = rng.standard_normal((len(slots), hkv, d)).astype(np.float32)
        self.v = rng.standard_normal((len(slots), hkv, d)).astype(np.float32)
        self.kc = torch.zeros(shape, dtype=TORCH_DT[dt], device="cuda")
        self.vc = torch.zeros(shape, dtype=TORCH_DT[dt], device="cuda")
        if dt == "int8":
            self.ks = torch.ones(shape[:3], dtype=torch.float32, device="cuda")
            self.vs = torch.ones(shape[:3], dtype=torch.float32, device="cuda")
        elif dt == "float8_e4m3fn":
            self.ks, self.vs = 3.0 / 448, 2.5 / 448
        else:
            self.ks, self.vs = 1.0, 1.0
        ops.reshape_and_cache(torch.from_numpy(self.k).cuda(), torch.from_numpy(self.v).cuda(), self.kc, self.vc,
                              torch.from_numpy(self.slots).cuda(), k_scale=self.ks, v_scale=self.vs)
        self.kd = np.zeros(shape)
        self.vd = np.zeros(shape)
        self.kd[self.slots // bs, self.slots % bs] = self.k
        self.vd[self.slots // bs, self.slots % bs] = self.v

    def args(self):
        return dict(k_scale=self.ks, v_scale=self.vs)

    def host_scales(self):
        if self.dt == "int8":
            return self.ks.cpu().numpy(), self.vs.cpu().numpy()
        return self.ks, self.vs

    def stored(self):
        return _np(self.kc, self.dt), _np(self.vc, self.dt)


HEADS = [(9, 3), (4, 4), (8, 1)]


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("hq, hkv", HEADS, ids=lambda h: str(h))
@pytest.mark.parametrize("bs", [8, 16, 32])
@pytest.mark.parametrize("dt", DTYPES)
def test_decode_matches_reference(dt, bs, hq, hkv, d):
    lens = [1, bs - 1, bs, bs + 1, 300, 4097]
    rng = np.random.default_rng(bs * 1000 + hq * 10 + d)
    c = DevPaged(rng, lens, bs, hkv, d, dt)
    q = rng.standard_normal((len(lens), hq, d)).astype(np.float32)
    qd = torch.from_numpy(q).cuda()
    ks, vs = c.stored()
    hks, hvs = c.host_scales()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, hks, hvs)
    exact = ref.paged_attention_decode(q, c.kd, c.vd, c.bt, c.lens)
    long_rows = c.lens >= 64
    for splits in (None, 1, 5):
        got = ops.paged_attention_decode(qd, c.kc, c.vc, torch.from_numpy(c.bt).cuda(), torch.from_numpy(c.lens).cuda(),
                                         num_splits=splits, **c.args())
        assert got.is_cuda and got.dtype == torch.float32 and tuple(got.shape) == q.shape
        g = got.cpu().numpy()
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, want, rtol=0, atol=STORED, err_msg=f"splits={splits}")
        assert np.abs(g[long_rows] - exact[long_rows]).max() <= E2E[dt]


@pytest.mark.parametrize("d", [40, 72, 192, 256])
@pytest.mark.parametrize("dt", DTYPES)
def test_decode_odd_and_wide_head_dims(dt, d):
    """Head sizes whose per-thread chunks the 64/128 cases never produce: 8-byte chunks (fp8/int8
    with D % 16 != 0), inactive lanes in a key group (D / VEC not a power of two), and 32-byte
    float32 chunks (D > 128), each through the kernel's shared-memory ring and every split count."""
    lens = [1, 15, 16, 17, 300, 1025]
    rng = np.random.default_rng(d * 7 + len(dt))
    c = DevPaged(rng, lens, 16, 2, d, dt)
    q = rng.standard_normal((len(lens), 6, d)).astype(np.float32)
    ks, vs = c.stored()
    hks, hvs = c.host_scales()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, hks, hvs)
    for splits in (None, 1, 3):
        got = ops.paged_attention_decode(torch.from_numpy(q).cuda(), c.kc, c.vc, torch.from_numpy(c.bt).cuda(),
                                         torch.from_numpy(c.lens).cuda(), num_splits=splits, **c.args())
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=STORED, err_msg=f"D={d} splits={splits}")


@pytest.mark.parametrize("dt", DTYPES)
def test_decode_equals_cpu_backend_on_the_same_cache(dt):
    rng = np.random.default_rng(7)
    c = DevPaged(rng, [700, 5, 33], 16, 2, 128, dt)
    q = rng.standard_normal((3, 8, 128)).astype(np.float32)
    ks, vs = c.stored()
    hks, hvs = c.host_scales()
    with cpu_float_path():
        cpu = ops.paged_attention_decode(q, ks.copy(), vs.copy(), c.bt, c.lens, k_scale=hks, v_scale=hvs,
                                         backend="cpu")
    gpu = ops.paged_attention_decode(torch.from_numpy(q).cuda(), c.kc, c.vc, c.bt, c.lens, **c.args()).cpu().numpy()
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=2e-5)


@pytest.mark.parametrize("d", [64, 128])
@pytest.mark.parametrize("dt, tile", [("float16", 16), ("float8_e4m3fn", 16), ("int8", 16), ("float8_e4m3fn", 32),
                                      ("int8", 32)])
@pytest.mark.parametrize("hq, hkv", [(32, 2), (5, 5), (24, 3)], ids=lambda h: str(h))
def test_tensor_core_decode_equals_the_cuda_core_kernel(monkeypatch, dt, d, hq, hkv, tile):
    # float16/fp8/int8 caches with head_dim 64/128 decode on tensor cores (attention_decode_mma.cu;
    # Q and P split into float16 hi + lo), the rest on CUDA cores (INFERCORE_CUDA_ATTN_MMA=0 forces
    # those): both float32-accurate, so they agree far inside STORED. Groups of 16 and 8 query heads
    # per kv head (two chunks / one full m16 tile), K/V rows scaled over 6 decades (int8's per-token
    # scales: the running max that P is divided by moves), queries from 1e-20 to 1e20 (Q is scaled
    # by a power of two into float16 range). tile 32: 32-key tiles (INFERCORE_CUDA_ATTN_MMA_TILE,
    # 8-bit caches only; float16 keeps 16).
    monkeypatch.setenv("INFERCORE_CUDA_ATTN_MMA_TILE", str(tile))
    rng = np.random.default_rng(d + hq + len(dt))
    lens = [1, 17, 300, 2049]
    c = DevPaged(rng, lens, 16, hkv, d, dt)
    rows = 10.0 ** rng.uniform(-3, 3, size=(c.k.shape[0], hkv, 1))
    ks = torch.from_numpy((c.k * rows).astype(np.float32)).cuda()
    vs = torch.from_numpy((c.v * rows[::-1]).astype(np.float32)).cuda()
    if dt != "int8":  # one scale per layer: the rows keep their range inside fp8's
        ks, vs = ks / float(rows.max()), vs / float(rows.max())
    ops.reshape_and_cache(ks, vs, c.kc, c.vc, torch.from_numpy(c.slots).cuda(), **c.args())
    kst, vst = c.stored()
    hks, hvs = c.host_scales()
    for qscale in (1e-20, 1.0, 30.0, 1e20):
        q = (rng.standard_normal((len(lens), hq, d)) * qscale).astype(np.float32)
        qd = torch.from_numpy(q).cuda()
        for splits in (None, 1, 3):
            monkeypatch.delenv("INFERCORE_CUDA_ATTN_MMA", raising=False)
            tc = ops.paged_attention_decode(qd, c.kc, c.vc, c.bt, c.lens, num_splits=splits, **c.args()).cpu().numpy()
            monkeypatch.setenv("INFERCORE_CUDA_ATTN_MMA", "0")
            cc = ops.paged_attention_decode(qd, c.kc, c.vc, c.bt, c.lens, num_splits=splits, **c.args()).cpu().numpy()
            assert np.isfinite(tc).all()
            scale = max(1.0, float(np.abs(cc).max()))
            np.testing.assert_allclose(tc / scale, cc / scale, rtol=0, atol=1e-5, err_msg=f"q x {qscale}, {splits}")
            if qscale == 1.0:
                want = ref.paged_attention_decode(q, kst, vst, c.bt, c.lens, None, hks, hvs)
                np.testing.assert_allclose(tc / scale, want / scale, rtol=0, atol=STORED)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("src", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("d", [64, 40])  # 40: D / 8 is not a power of two -> the warp-per-row writer
def test_reshape_and_cache_is_byte_identical_to_the_cpu_writer(dt, src, d):
    rng = np.random.default_rng(3)
    shape = (6, 8, 2, d)
    k = (rng.standard_normal((10, 2, d)) * 2).astype(np.float32)
    k[0, 0, :4] = [1e4, -1e4, 0.0, 1e-9]  # fp8 saturation and subnormals
    k[1, 1] = 0.0  # an all-zero int8 row: scale 1
    v = rng.standard_normal((10, 2, d)).astype(np.float32)
    k, v = k.astype(NP_DT[src]), v.astype(NP_DT[src])
    slots = rng.permutation(48)[:10].astype(np.int64)
    slots[3] = -1
    fill = 1
    hk, hv = np.full(shape, fill, NP_DT[dt]), np.full(shape, fill, NP_DT[dt])
    if dt == "int8":
        hks, hvs = np.full(shape[:3], 7, np.float32), np.full(shape[:3], 7, np.float32)
    else:
        hks = hvs = 0.5
    ops.reshape_and_cache(k, v, hk, hv, slots, k_scale=hks, v_scale=hvs, backend="cpu")

    def dev(a):
        t = torch.from_numpy(a.view(np.int16) if a.dtype == ml_dtypes.bfloat16 else a)
        return t.view(torch.bfloat16).cuda() if a.dtype == ml_dtypes.bfloat16 else t.cuda()

    dk = torch.full(shape, fill, dtype=torch.float32).to(TORCH_DT[dt]).cuda()
    dv = torch.full(shape, fill, dtype=torch.float32).to(TORCH_DT[dt]).cuda()
    if dt == "int8":
        dks, dvs = torch.full(shape[:3], 7.0, device="cuda"), torch.full(shape[:3], 7.0, device="cuda")
    else:
        dks = dvs = 0.5
    ops.reshape_and_cache(dev(k), dev(v), dk, dv, torch.from_numpy(slots).cuda(), k_scale=dks, v_scale=dvs)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(_np(dk, dt).view(np.uint8), hk.view(np.uint8))
    np.testing.assert_array_equal(_np(dv, dt).view(np.uint8), hv.view(np.uint8))
    if dt == "int8":
        np.testing.assert_array_equal(dks.cpu().numpy(), hks)
        np.testing.assert_array_equal(dvs.cpu().numpy(), hvs)


def test_fp8_writer_matches_torch_cast():
    codes = np.arange(0, 0x7F, dtype=np.uint8)
    vals = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    mids = (vals[:-1] + vals[1:]) / 2
    x = np.concatenate([vals, mids, -vals, -mids, [448, 460, 470, 1e6, -1e6, np.inf]]).astype(np.float32)
    k = torch.from_numpy(np.resize(x, (x.size + 63) // 64 * 64).reshape(-1, 1, 64)).cuda()
    kc = torch.zeros((k.shape[0], 1, 1, 64), dtype=torch.float8_e4m3fn, device="cuda")
    ops.reshape_and_cache(k, k, kc, kc.clone(), torch.arange(k.shape[0], device="cuda"), k_scale=1.0, v_scale=1.0)
    # The writer saturates to +-448 as vLLM's does (torch 2.13's cast too; torch 2.11's gives NaN), so
    # the codes come from ml_dtypes' round-to-nearest-even cast of the clipped values.
    want = np.clip(np.resize(x, k.numel()), -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8)
    np.testing.assert_array_equal(kc.view(torch.uint8).cpu().numpy().reshape(-1), want)


PREFILL_CASES = [  # (new tokens per seq, seq_lens, block_size, Hq, Hkv, D, dtype, shared prefix blocks)
    ([5, 1, 17], [5, 1, 17], 8, 9, 3, 64, "float32", 0),
    ([33, 10], [65, 42], 32, 4, 4, 128, "float16", 1),          # cached prefix shared by both sequences
    ([20, 3, 0], [52, 35, 16], 16, 8, 1, 64, "int8", 2),         # two shared blocks, one idle sequence
    ([40], [300], 16, 9, 3, 64, "float8_e4m3fn", 0),
    ([24, 8], [24, 40], 16, 32, 8, 128, "bfloat16", 0),
    ([300, 77], [4097, 333], 16, 9, 3, 64, "float16", 3),        # long cached prefixes, 3 shared blocks
    ([129, 64], [129, 200], 32, 8, 8, 128, "float32", 2),
]


@pytest.mark.parametrize("case", PREFILL_CASES, ids=lambda c: f"{c[6]}-bs{c[2]}-h{c[3]}/{c[4]}-d{c[5]}-p{c[7]}")
def test_prefill_matches_reference(case):
    new, lens, bs, hq, hkv, d, dt, shared = case
    rng = np.random.default_rng(sum(lens))
    c = DevPaged(rng, lens, bs, hkv, d, dt, shared_prefix_blocks=shared)
    qsl = np.concatenate([[0], np.cumsum(new)]).astype(np.int32)
    q = rng.standard_normal((int(qsl[-1]), hq, d)).astype(np.float32)
    qd = torch.from_numpy(q).cuda()
    ks, vs = c.stored()
    hks, hvs = c.host_scales()
    want = ref.paged_attention_prefill(q, ks, vs, c.bt, c.lens, qsl, None, hks, hvs)
    got = ops.paged_attention_prefill(qd, c.kc, c.vc, torch.from_numpy(c.bt).cuda(), c.lens, qsl, **c.args())
    g = got.cpu().numpy()
    np.testing.assert_allclose(g, want, rtol=0, atol=STORED)
    with cpu_float_path():
        cpu = ops.paged_attention_prefill(q, ks.copy(), vs.copy(), c.bt, c.lens, qsl, k_scale=hks, v_scale=hvs,
                                          backend="cpu")
    np.testing.assert_allclose(g, cpu, rtol=0, atol=2e-5)
    # the last new token of each sequence is what decode computes for it
    has = np.asarray(new) > 0
    last = qsl[1:][has] - 1
    qlast = qd[torch.from_numpy(last).long().cuda()]
    dec = ops.paged_attention_decode(qlast, c.kc, c.vc, c.bt[has], c.lens[has], **c.args())
    np.testing.assert_allclose(dec.cpu().numpy(), g[last], rtol=0, atol=2e-5)


@pytest.mark.parametrize("window", [1, 5, 40, 1000])
def test_sliding_window(window):
    rng = np.random.default_rng(window)
    c = DevPaged(rng, [3, 64, 200, 1500], 16, 3, 64, "float32")
    q = rng.standard_normal((4, 6, 64)).astype(np.float32)
    want = ref.paged_attention_decode(q, c.kd, c.vd, c.bt, c.lens, sliding_window=window)
    for splits in (None, 4):
        got = ops.paged_attention_decode(torch.from_numpy(q).cuda(), c.kc, c.vc, c.bt, c.lens, sliding_window=window,
                                         num_splits=splits)
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=STORED)
    qsl = np.array([0, 3, 30, 100, 400], np.int32)
    qp = rng.standard_normal((400, 6, 64)).astype(np.float32)
    wantp = ref.paged_attention_prefill(qp, c.kd, c.vd, c.bt, c.lens, qsl, sliding_window=window)
    gotp = ops.paged_attention_prefill(torch.from_numpy(qp).cuda(), c.kc, c.vc, c.bt, c.lens, qsl,
                                       sliding_window=window)
    np.testing.assert_allclose(gotp.cpu().numpy(), wantp, rtol=0, atol=STORED)


@pytest.mark.parametrize("qdt", [torch.float16, torch.bfloat16])
def test_16bit_queries_and_scale(qdt):
    rng = np.random.default_rng(5)
    c = DevPaged(rng, [40, 100], 16, 2, 64, "float16")
    q = torch.from_numpy(rng.standard_normal((2, 4, 64)).astype(np.float32)).to(qdt)
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q.float().numpy(), ks, vs, c.bt, c.lens, 0.3)
    got = ops.paged_attention_decode(q.cuda(), c.kc, c.vc, c.bt, c.lens, scale=0.3)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=STORED)


def test_runs_on_the_callers_stream():
    rng = np.random.default_rng(1)
    c = DevPaged(rng, [2000] * 8, 16, 8, 128, "float16")
    q = torch.randn(8, 32, 128, device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens)
    s.synchronize()
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q.cpu().numpy(), ks, vs, c.bt, c.lens)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=0, atol=STORED)


# ------------------------------------------------------------------------------ bad inputs
def _bad():
    rng = np.random.default_rng(0)
    c = DevPaged(rng, [20, 33], 16, 2, 64, "float16")
    return c, torch.randn(2, 4, 64, device="cuda")


@pytest.mark.parametrize("on_device", [False, True])
@pytest.mark.parametrize("mutate, err, word", [
    (lambda c, a: a["bt"].__setitem__((0, 1), c.nb), ValueError, "block_tables"),
    (lambda c, a: a["bt"].__setitem__((1, 0), -1), ValueError, "block_tables"),
    (lambda c, a: a["lens"].__setitem__(0, a["bt"].shape[1] * 16 + 1), ValueError, "seq_lens"),
    (lambda c, a: a["lens"].__setitem__(1, 0), ValueError, "seq_lens"),
    (lambda c, a: a.__setitem__("q", a["q"][:, :3]), ValueError, "num_kv_heads"),
    (lambda c, a: a.__setitem__("q", a["q"][:, :, :32].contiguous()), ValueError, "head_dim"),
    (lambda c, a: a.__setitem__("q", a["q"].double()), TypeError, "q"),
    (lambda c, a: a.__setitem__("bt", a["bt"][:1]), ValueError, "block_tables"),
    (lambda c, a: a.__setitem__("vc", c.vc[:, :, :1].contiguous()), ValueError, "v_cache"),
    (lambda c, a: a.__setitem__("kc", c.kc.double()), TypeError, "k_cache"),
    (lambda c, a: a.__setitem__("kc", c.kc[:, :, :, ::2]), ValueError, "k_cache"),
    (lambda c, a: a.__setitem__("kc", c.kc.cpu()), ValueError, "k_cache"),
    (lambda c, a: a.__setitem__("window", 0), ValueError, "sliding_window"),
])
def test_decode_bad_inputs_raise(mutate, err, word, on_device):
    c, q = _bad()
    a = {"q": q, "kc": c.kc, "vc": c.vc, "bt": c.bt.copy(), "lens": c.lens.copy(), "window": None}
    mutate(c, a)
    bt, lens = a["bt"], a["lens"]
    if on_device:
        bt, lens = torch.from_numpy(bt).cuda(), torch.from_numpy(lens).cuda()
    with pytest.raises(err, match=word):
        ops.paged_attention_decode(a["q"], a["kc"], a["vc"], bt, lens, sliding_window=a["window"])


def test_prefill_bad_query_start_loc():
    c, _ = _bad()
    qp = torch.zeros(5, 4, 64, device="cuda")
    for qsl in ([0, 2, 4], [0, 3], [1, 2, 5], [0, 4, 2]):
        with pytest.raises(ValueError, match="query_start_loc"):
            ops.paged_attention_prefill(qp, c.kc, c.vc, c.bt, c.lens, np.array(qsl, np.int32))
    with pytest.raises(ValueError, match="seq_lens"):
        ops.paged_attention_prefill(torch.zeros(30, 4, 64, device="cuda"), c.kc, c.vc, c.bt, c.lens,
                                    np.array([0, 25, 30], np.int32))


def test_reshape_bad_slots_touch_nothing():
    c, _ = _bad()
    k = torch.ones(3, 2, 64, device="cuda")
    before = c.kc.clone()
    for bad in (c.nb * 16, -2):
        for slots in (np.array([0, 1, bad]), torch.tensor([0, 1, bad], device="cuda")):
            with pytest.raises(ValueError, match=r"slot_mapping\[2\]"):
                ops.reshape_and_cache(k, k, c.kc, c.vc, slots)
    assert torch.equal(c.kc, before)
    with pytest.raises(ValueError, match="k"):
        ops.reshape_and_cache(k[:, :1], k[:, :1], c.kc, c.vc, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="k_scale"):
        ops.reshape_and_cache(k, k, c.kc.to(torch.int8), c.vc.to(torch.int8), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="v"):
        ops.reshape_and_cache(k, k.cpu(), c.kc, c.vc, np.array([0, 1, 2]))


def test_raw_binding_clamps_and_flags_bad_device_indices():
    # Straight at the launcher, skipping the Python checks: out-of-range block ids, lengths and
    # slots must never be dereferenced (no illegal address), and set the error word.
    from infercore._native import cuda_module

    mod = cuda_module()
    kc = torch.zeros(4, 16, 2, 64, dtype=torch.float16, device="cuda")
    vc = torch.zeros_like(kc)
    cache = (kc.data_ptr(), vc.data_ptr(), 0, 0, 1.0, 1.0, 1, 4, 16, 2, 64)
    q = torch.randn(1, 4, 64, device="cuda")
    out = torch.full((1, 4, 64), 7.0, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    for bt, lens, bit in (([[1 << 30]], [5], 1), ([[0]], [10 ** 6], 2), ([[-5]], [1], 1)):
        err = torch.zeros(1, dtype=torch.int32, device="cuda")
        btd = torch.tensor(bt, dtype=torch.int32, device="cuda")
        ld = torch.tensor(lens, dtype=torch.int32, device="cuda")
        for prefill in (False, True):
            qsl = torch.tensor([0, 1], dtype=torch.int32, device="cuda")
            mod.paged_attention(prefill, q.data_ptr(), 0, out.data_ptr(), 1, 1, 4, btd.data_ptr(), 1, ld.data_ptr(),
                                qsl.data_ptr(), 1, 0.125, 0, 1, 0, 0, cache, err.data_ptr(), stream)
            torch.cuda.synchronize()
            assert int(err.item()) & bit
    err = torch.zeros(1, dtype=torch.int32, device="cuda")
    before = kc.clone()
    slots = torch.tensor([1 << 40, -3], dtype=torch.int64, device="cuda")
    x = torch.ones(2, 2, 64, dtype=torch.float16, device="cuda")
    mod.reshape_and_cache(x.data_ptr(), x.data_ptr(), 1, slots.data_ptr(), 2, cache, err.data_ptr(), stream)
    torch.cuda.synchronize()
    assert int(err.item()) == 4 and torch.equal(kc, before)
    with pytest.raises(ValueError, match="num_splits"):
        mod.paged_attention(False, q.data_ptr(), 0, out.data_ptr(), 1, 1, 4, btd.data_ptr(), 1, ld.data_ptr(), 0, 0,
                            0.125, 0, 2, 0, 0, cache, 0, stream)  # splits > 1 without a workspace
    with pytest.raises(ValueError, match="dtype"):
        mod.paged_attention(False, q.data_ptr(), 0, out.data_ptr(), 1, 1, 4, btd.data_ptr(), 1, ld.data_ptr(), 0, 0,
                            0.125, 0, 1, 0, 0, cache[:6] + (9,) + cache[7:], 0, stream)


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    rng = np.random.default_rng(2)
    c = DevPaged(rng, [50, 7], 16, 2, 64, "float16")
    kc, vc = cp.asarray(c.kc), cp.asarray(c.vc)
    q = rng.standard_normal((2, 4, 64)).astype(np.float32)
    got = ops.paged_attention_decode(cp.asarray(q), kc, vc, c.bt, c.lens)
    assert isinstance(got, cp.ndarray)
    ks, vs = c.stored()
    np.testing.assert_allclose(cp.asnumpy(got), ref.paged_attention_decode(q, ks, vs, c.bt, c.lens), atol=STORED)
