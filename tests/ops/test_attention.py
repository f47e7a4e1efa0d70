"""Paged attention (decode, prefill) and reshape_and_cache on the CPU kernels at every ISA level
against the float64 dense reference, with shuffled block tables."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ml_dtypes
import numpy as np
import pytest
import torch

import infercore
from infercore import ops
from infercore.ops import reference as ref

NP = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
      "float8_e4m3fn": ml_dtypes.float8_e4m3fn, "int8": np.int8}
# Max abs error for unit-variance inputs rounded to a 16-bit / quantized type first.
BUDGET = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-3, "float8_e4m3fn": 6e-2, "int8": 3e-2}
# End to end (fp32 values -> quantized cache -> attention) against the unquantized reference,
# for contexts of >= 64 tokens where the output averages over many values.
E2E = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2, "float8_e4m3fn": 6e-2, "int8": 3e-2}
# int8 caches on AVX-512 VNNI use integer dot products: the (scaled) query rounded to int16 per
# row and the softmax weights to uint8 per 32-key tile (csrc/cpu/attn_simd_avx512vnni.h). Against
# the stored values that rounding is what is left: max 0.013 over 40 seeds of 4 geometries (short
# contexts, where few keys share the output, are the worst; 0.002 at 700 keys).
INT8_DOTS = 2e-2
# fp8 caches on AVX512-FP16 compute in float16 (csrc/cpu/attn_simd_avx512fp16.h): max 0.0032
# against the stored values over 30 seeds of 5 geometries.
FP8_DOTS = 6e-3


def lowp_dots(dt: str) -> bool:
    """Whether the CPU kernel at the current ISA level takes its low-precision path for dt."""
    cpu = infercore.system_info()["cpu"]
    if infercore.get_isa() != "avx512":
        return False
    return (dt == "int8" and cpu["avx512_vnni"]) or (dt == "float8_e4m3fn" and cpu["avx512_fp16"])


def stored_tol(dt: str) -> float:
    """Max abs error against the float64 reference on the stored (cache) values."""
    if not lowp_dots(dt):
        return 1e-5
    return INT8_DOTS if dt == "int8" else FP8_DOTS


class Paged:
    """A randomly filled paged cache: sequences get shuffled, non-contiguous blocks."""

    def __init__(self, rng, lens, bs, hkv, d, dtype, num_blocks=None, shared_prefix_blocks=0, extra_cols=2):
        self.bs, self.hkv, self.d, self.dtype = bs, hkv, d, dtype
        need = [(n + bs - 1) // bs for n in lens]
        total = sum(need) + 2
        self.nb = num_blocks or total
        perm = rng.permutation(self.nb).astype(np.int32)
        self.bt = np.full((len(lens), max(need) + extra_cols), -7, np.int32)  # unused entries are garbage
        nxt = shared_prefix_blocks
        for s, n in enumerate(need):
            for j in range(n):
                if j < shared_prefix_blocks:
                    self.bt[s, j] = perm[j]  # the same physical block in every sequence
                else:
                    self.bt[s, j] = perm[nxt]
                    nxt += 1
        self.lens = np.asarray(lens, np.int32)
        shape = (self.nb, bs, hkv, d)
        self.kc = np.zeros(shape, NP[dtype])
        self.vc = np.zeros(shape, NP[dtype])
        self.ks = np.ones(shape[:3], np.float32) if dtype == "int8" else 1.0
        self.vs = np.ones(shape[:3], np.float32) if dtype == "int8" else 1.0
        if dtype == "float8_e4m3fn":
            self.ks, self.vs = 3.0 / 448, 2.5 / 448
        self.kd = np.zeros(shape)  # exact (unquantized) values
        self.vd = np.zeros(shape)
        slots, k, v = [], [], []
        for s, n in enumerate(lens):
            for p in range(n):
                slot = int(self.bt[s, p // bs]) * bs + p % bs
                slots.append(slot)
        slots = np.unique(np.asarray(slots, np.int64))  # shared prefix blocks are written once
        k = rng.standard_normal((len(slots), hkv, d)).astype(np.float32)
        v = rng.standard_normal((len(slots), hkv, d)).astype(np.float32)
        ops.reshape_and_cache(k, v, self.kc, self.vc, slots, k_scale=self.ks, v_scale=self.vs)
        self.kd[slots // bs, slots % bs] = k
        self.vd[slots // bs, slots % bs] = v

    def args(self):
        return dict(k_scale=self.ks, v_scale=self.vs)

    def stored(self):
        return self.kc.astype(np.float64) if self.dtype != "int8" else self.kc, \
            self.vc.astype(np.float64) if self.dtype != "int8" else self.vc


DECODE_CASES = [  # (seq_lens, block_size, Hq, Hkv, D, dtype)
    ([1, 15, 16, 17], 16, 9, 3, 64, "float32"),
    ([7, 8, 9, 300], 8, 4, 4, 128, "float16"),
    ([31, 32, 33], 32, 8, 1, 64, "bfloat16"),
    ([300, 1, 16], 16, 9, 3, 64, "float8_e4m3fn"),
    ([300, 17, 32], 32, 32, 8, 128, "int8"),
    ([4097], 16, 9, 3, 64, "float16"),
    ([64, 300], 8, 6, 2, 80, "float32"),  # D not a multiple of 16: SIMD tails
]


@pytest.mark.parametrize("case", DECODE_CASES, ids=lambda c: f"{c[5]}-bs{c[1]}-h{c[2]}/{c[3]}-d{c[4]}-L{max(c[0])}")
def test_decode_matches_reference(isa, case):
    lens, bs, hq, hkv, d, dt = case
    rng = np.random.default_rng(len(lens) * 1000 + bs)
    c = Paged(rng, lens, bs, hkv, d, dt)
    q = rng.standard_normal((len(lens), hq, d)).astype(np.float32)
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, c.ks, c.vs)
    for splits in (None, 1, 3):
        got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, num_splits=splits, **c.args())
        assert got.dtype == np.float32 and got.shape == q.shape
        # against the stored values only float32 accumulation error is left (1e-5), and for
        # int8/fp8 the low-precision paths' rounding of q and p
        np.testing.assert_allclose(got, want, rtol=0, atol=stored_tol(dt))
    if min(lens) >= 64:
        exact = ref.paged_attention_decode(q, c.kd, c.vd, c.bt, c.lens)
        assert np.abs(got - exact).max() <= E2E[dt]


@pytest.mark.parametrize("qdt", ["float16", "bfloat16"])
def test_decode_16bit_queries_and_torch(isa, qdt):
    rng = np.random.default_rng(5)
    c = Paged(rng, [40, 100], 16, 2, 64, "float16")
    q = rng.standard_normal((2, 4, 64)).astype(NP[qdt])
    want = ref.paged_attention_decode(q.astype(np.float64), c.kc, c.vc, c.bt, c.lens)
    got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens)
    np.testing.assert_allclose(got, want, atol=BUDGET[qdt])
    tq = torch.from_numpy(q.astype(np.float32)).to(getattr(torch, qdt))
    tk = torch.from_numpy(c.kc)
    tgot = ops.paged_attention_decode(tq, tk, torch.from_numpy(c.vc), torch.from_numpy(c.bt), c.lens)
    assert isinstance(tgot, torch.Tensor)
    np.testing.assert_allclose(tgot.numpy(), want, atol=BUDGET[qdt])


@pytest.mark.parametrize("window", [1, 5, 40, 1000])
def test_decode_sliding_window(isa, window):
    rng = np.random.default_rng(window)
    c = Paged(rng, [3, 64, 200], 16, 3, 64, "float32")
    q = rng.standard_normal((3, 6, 64)).astype(np.float32)
    want = ref.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, sliding_window=window)
    for splits in (None, 4):
        got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, sliding_window=window, num_splits=splits)
        np.testing.assert_allclose(got, want, atol=1e-5)


PREFILL_CASES = [  # (new tokens per seq, seq_lens, block_size, Hq, Hkv, D, dtype, shared prefix blocks)
    ([5, 1, 17], [5, 1, 17], 8, 9, 3, 64, "float32", 0),       # plain prefill
    ([33, 10], [65, 42], 32, 4, 4, 128, "float16", 1),         # cached prefix shared by both sequences
    ([20, 3, 0], [52, 35, 16], 16, 8, 1, 64, "int8", 2),       # two shared blocks, one idle sequence
    ([40], [300], 16, 9, 3, 64, "float8_e4m3fn", 0),
    ([24, 8], [24, 40], 16, 32, 8, 128, "bfloat16", 0),
]


@pytest.mark.parametrize("case", PREFILL_CASES, ids=lambda c: f"{c[6]}-bs{c[2]}-h{c[3]}/{c[4]}-prefix{c[7]}")
def test_prefill_matches_reference(isa, case):
    new, lens, bs, hq, hkv, d, dt, shared = case
    rng = np.random.default_rng(sum(lens))
    c = Paged(rng, lens, bs, hkv, d, dt, shared_prefix_blocks=shared)
    qsl = np.concatenate([[0], np.cumsum(new)]).astype(np.int32)
    q = rng.standard_normal((int(qsl[-1]), hq, d)).astype(np.float32)
    ks, vs = c.stored()
    want = ref.paged_attention_prefill(q, ks, vs, c.bt, c.lens, qsl, None, c.ks, c.vs)
    got = ops.paged_attention_prefill(q, c.kc, c.vc, c.bt, c.lens, qsl, **c.args())
    np.testing.assert_allclose(got, want, atol=stored_tol(dt))
    # the last new token of each sequence is exactly what decode computes for it
    last = qsl[1:][np.asarray(new) > 0] - 1
    has = np.asarray(new) > 0
    dec = ops.paged_attention_decode(q[last], c.kc, c.vc, c.bt[has], c.lens[has], **c.args())
    np.testing.assert_allclose(dec, got[last], atol=1e-5)


def test_prefill_sliding_window_and_reference_backend(isa):
    rng = np.random.default_rng(9)
    c = Paged(rng, [50, 70], 16, 2, 64, "float32")
    qsl = np.array([0, 30, 100], np.int32)
    q = rng.standard_normal((100, 4, 64)).astype(np.float32)
    got = ops.paged_attention_prefill(q, c.kc, c.vc, c.bt, c.lens, qsl, sliding_window=7)
    want = ops.paged_attention_prefill(q, c.kc, c.vc, c.bt, c.lens, qsl, sliding_window=7, backend="reference")
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float8_e4m3fn", "int8"])
def test_reshape_and_cache_matches_numpy_writer(isa, dt):
    rng = np.random.default_rng(3)
    shape = (6, 8, 2, 40)
    k = (rng.standard_normal((10, 2, 40)) * 2).astype(np.float32)
    k[0, 0, :4] = [1e4, -1e4, 0.0, 1e-9]  # saturation and subnormals for fp8
    k[1, 1] = 0.0  # all-zero int8 row: scale 1
    v = rng.standard_normal((10, 2, 40)).astype(np.float32)
    slots = rng.permutation(48)[:10].astype(np.int64)
    slots[3] = -1
    caches = []
    for backend in ("cpu", "reference"):
        kc, vc = np.full(shape, 1, NP[dt]), np.full(shape, 1, NP[dt])
        ks = np.full(shape[:3], 7, np.float32) if dt == "int8" else 0.5
        vs = np.full(shape[:3], 7, np.float32) if dt == "int8" else 0.5
        ops.reshape_and_cache(k, v, kc, vc, slots, k_scale=ks, v_scale=vs, backend=backend)
        caches.append((kc, vc, ks, vs))
    (a, b, aks, avs), (c, d, cks, cvs) = caches
    np.testing.assert_array_equal(a.view(np.uint8), c.view(np.uint8))
    np.testing.assert_array_equal(b.view(np.uint8), d.view(np.uint8))
    if dt == "int8":
        np.testing.assert_array_equal(aks, cks)
        np.testing.assert_array_equal(avs, cvs)
    skipped = int(slots[3])  # the untouched slot keeps its old value
    if skipped >= 0:
        assert np.all(a.reshape(48, 2, 40)[skipped].astype(np.float32) == 1)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float8_e4m3fn", "int8"])
@pytest.mark.parametrize("d", [7, 37, 64])
def test_reshape_and_cache_same_bytes_at_every_isa(isa, dt, d):
    # The vector writers (F16C halves, AVX2 int8 rows) against the scalar level, byte for byte,
    # on head sizes with and without a vector tail and on values the encoders special-case.
    rng = np.random.default_rng(d)
    k = (rng.standard_normal((9, 3, d)) * 3).astype(np.float32)
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, 7e4, -7e4, 65519.0, 65520.0, 6e-8, -3e-8,
                        1e-40, 0.0, -0.0, 1e30], np.float32)
    k[0, 0, : min(d, special.size)] = special[:d]
    k[1, 2, :] = 0.0  # an all-zero int8 row: scale 1
    k[2, 1, :] = -0.0
    k[3, 0, d // 2] = np.nan  # NaN inside an otherwise finite int8 row: ignored by absmax, stored as 0
    v = k[::-1].copy()
    slots = np.arange(9, dtype=np.int64)[::-1].copy()
    out = []
    for level in (isa, "scalar"):
        infercore.set_isa(level)
        kc, vc = np.zeros((3, 4, 3, d), NP[dt]), np.zeros((3, 4, 3, d), NP[dt])
        ks = np.zeros((3, 4, 3), np.float32) if dt == "int8" else 0.75
        vs = np.zeros((3, 4, 3), np.float32) if dt == "int8" else 0.75
        ops.reshape_and_cache(k, v, kc, vc, slots, k_scale=ks, v_scale=vs)
        scales = [ks.view(np.uint32), vs.view(np.uint32)] if dt == "int8" else []
        out.append([kc.view(np.uint8), vc.view(np.uint8), *scales])
    infercore.set_isa(isa)
    for got, want in zip(out[0], out[1], strict=True):
        np.testing.assert_array_equal(got, want)
    if dt == "int8":
        assert out[0][0].reshape(3 * 4, 3, d)[8 - 3, 0, d // 2] == 0  # the NaN element of token 3


def test_fp8_encoding_is_exact_round_to_nearest_even(isa):
    # Every representable E4M3 value, the midpoints between neighbours, and beyond 448.
    codes = np.arange(0, 0x7F, dtype=np.uint8)
    vals = codes.view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    mids = (vals[:-1] + vals[1:]) / 2
    x = np.concatenate([vals, mids, -vals, -mids, [448, 460, 470, 1e6, -1e6, np.inf]]).astype(np.float32)
    k = np.resize(x, (x.size + 63) // 64 * 64).reshape(-1, 1, 64)
    kc = np.zeros((k.shape[0], 1, 1, 64), ml_dtypes.float8_e4m3fn)
    ops.reshape_and_cache(k, k, kc, kc.copy(), np.arange(k.shape[0]), k_scale=1.0, v_scale=1.0)
    want = np.clip(k, -448, 448).astype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(kc.reshape(k.shape).view(np.uint8), want.view(np.uint8))


# ------------------------------------------------------------------------------ bad inputs
def _bad_setup():
    rng = np.random.default_rng(0)
    c = Paged(rng, [20, 33], 16, 2, 64, "float32")
    q = rng.standard_normal((2, 4, 64)).astype(np.float32)
    return c, q


@pytest.mark.parametrize("mutate, err, word", [
    (lambda c, q, a: a["bt"].__setitem__((0, 1), c.nb), ValueError, "block_tables"),
    (lambda c, q, a: a["bt"].__setitem__((1, 0), -1), ValueError, "block_tables"),
    (lambda c, q, a: a["lens"].__setitem__(0, a["bt"].shape[1] * 16 + 1), ValueError, "seq_lens"),
    (lambda c, q, a: a["lens"].__setitem__(1, 0), ValueError, "seq_lens"),
    (lambda c, q, a: a.__setitem__("q", q[:, :3]), ValueError, "num_kv_heads"),
    (lambda c, q, a: a.__setitem__("q", q[:, :, :32].copy()), ValueError, "head_dim"),
    (lambda c, q, a: a.__setitem__("q", q.astype(np.float64)), TypeError, "q"),
    (lambda c, q, a: a.__setitem__("bt", a["bt"].astype(np.float32)), TypeError, "block_tables"),
    (lambda c, q, a: a.__setitem__("bt", a["bt"][:1]), ValueError, "block_tables"),
    (lambda c, q, a: a.__setitem__("vc", c.vc[:, :, :1].copy()), ValueError, "v_cache"),
    (lambda c, q, a: a.__setitem__("kc", c.kc.astype(np.float64)), TypeError, "k_cache"),
    (lambda c, q, a: a.__setitem__("kc", c.kc[:, :, :, ::2]), ValueError, "k_cache"),
    (lambda c, q, a: a.__setitem__("window", 0), ValueError, "sliding_window"),
])
def test_decode_bad_inputs_raise(mutate, err, word):
    c, q = _bad_setup()
    a = {"q": q, "kc": c.kc, "vc": c.vc, "bt": c.bt.copy(), "lens": c.lens.copy(), "window": None}
    mutate(c, q, a)
    with pytest.raises(err, match=word):
        ops.paged_attention_decode(a["q"], a["kc"], a["vc"], a["bt"], a["lens"], sliding_window=a["window"])


def test_prefill_bad_query_start_loc():
    c, _q = _bad_setup()
    qp = np.zeros((5, 4, 64), np.float32)
    with pytest.raises(ValueError, match="query_start_loc"):
        ops.paged_attention_prefill(qp, c.kc, c.vc, c.bt, c.lens, np.array([0, 2, 4], np.int32))
    with pytest.raises(ValueError, match="query_start_loc"):
        ops.paged_attention_prefill(qp, c.kc, c.vc, c.bt, c.lens, np.array([0, 3], np.int32))
    with pytest.raises(ValueError, match="seq_lens"):
        ops.paged_attention_prefill(np.zeros((30, 4, 64), np.float32), c.kc, c.vc, c.bt, c.lens,
                                    np.array([0, 25, 30], np.int32))


def test_reshape_and_cache_bad_slots_touch_nothing():
    c, _ = _bad_setup()
    k = np.ones((3, 2, 64), np.float32)
    before = c.kc.copy()
    for bad in (c.nb * 16, -2):
        with pytest.raises(ValueError, match=r"slot_mapping\[2\]"):
            ops.reshape_and_cache(k, k, c.kc, c.vc, np.array([0, 1, bad]))
    np.testing.assert_array_equal(c.kc, before)  # validated before the first write
    with pytest.raises(ValueError, match="k"):
        ops.reshape_and_cache(k[:, :1], k[:, :1], c.kc, c.vc, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="k_cache"):
        ops.reshape_and_cache(k, k, c.kc[:, ::2], c.vc[:, ::2], np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="k_scale"):
        ops.reshape_and_cache(k, k, c.kc.astype(np.int8), c.vc.astype(np.int8), np.array([0, 1, 2]))


def test_backends():
    c, q = _bad_setup()
    # triton with host arrays runs under the interpreter: tests/kernels/test_attention_triton.py
    with pytest.raises(ValueError, match="backend='cuda' needs a CuPy array or CUDA torch tensor"):
        ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, backend="gpu")


def test_native_entry_rejects_garbage_without_crashing():
    # Straight at the binding (no Python checks), in a subprocess: a crash would kill it.
    code = textwrap.dedent("""
        import numpy as np
        from infercore import _C
        kc = np.zeros((4, 16, 2, 64), np.float32)
        q = np.zeros((1, 4, 64), np.float32)
        out = np.empty_like(q)
        n = 0
        for bt, lens in ((np.array([[1 << 30]], np.int32), np.array([5], np.int32)),
                         (np.array([[0]], np.int32), np.array([10 ** 6], np.int32)),
                         (np.array([[-5]], np.int32), np.array([1], np.int32))):
            try:
                _C.paged_attention(False, q, "float32", kc, kc, 0, bt, lens, None, out, 1.0, 1.0, 1.0,
                                   None, None, 0, 0)
            except ValueError:
                n += 1
        for slots in (np.array([1 << 40]), np.array([-3])):
            try:
                _C.reshape_and_cache(q[:, :2], q[:, :2], kc, kc, slots, "float32", 0, 1.0, 1.0, None, None)
            except ValueError:
                n += 1
        try:
            _C.paged_attention(False, q, "float32", kc, kc, 4, np.array([[0]], np.int32), np.array([1], np.int32),
                               None, out, 1.0, 1.0, 1.0, None, None, 0, 0)
        except (TypeError, ValueError):
            n += 1
        print(n)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "6"


def test_thread_counts_agree():
    rng = np.random.default_rng(11)
    c = Paged(rng, [700, 5], 16, 2, 64, "float16")
    q = rng.standard_normal((2, 4, 64)).astype(np.float32)
    before = infercore.get_num_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            infercore.set_num_threads(n)
            outs.append(ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens))
    finally:
        infercore.set_num_threads(before)
    # key chunks at absolute positions, merged in key order (attention.cpp merge_chunk): the
    # split over the pool changes with the thread count, the bits do not
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


@pytest.mark.parametrize("dtype", ["float32", "float16", "float8_e4m3fn", "int8"])
def test_decode_equals_prefill_of_one_token_bitwise(isa, dtype):
    # The engine computes a sequence's next-token attention through the prefill kernel (a prompt's
    # last token, a chunk) or the decode kernel (a step), depending on the batch and the prefix
    # cache; seeded sampling reproduces whatever else is in the batch only if both give the same
    # bits. (A decode-only rewrite that reordered the sums broke this; see the stop-15 note.)
    rng = np.random.default_rng(5)
    c = Paged(rng, [1, 15, 16, 17, 300], 16, 3, 64, dtype)
    q = rng.standard_normal((5, 9, 64)).astype(np.float32)
    dec = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, **c.args())
    qsl = np.arange(6, dtype=np.int32)
    pre = ops.paged_attention_prefill(q, c.kc, c.vc, c.bt, c.lens, qsl, **c.args())
    np.testing.assert_array_equal(dec, pre)


@pytest.mark.parametrize("dtype", ["float32", "float16", "float8_e4m3fn", "int8"])
def test_long_rows_get_the_same_bits_in_any_batch_and_kernel(isa, dtype):
    # Long contexts are split over the pool (flash-decoding) at absolute multiples of 512 keys,
    # so a sequence's row has the same bits alone or beside others (its split once followed the
    # number of sequences), and the same as one-token prefill (the engine's mixed steps), and a
    # prompt row the same whichever prefill chunk it is in.
    rng = np.random.default_rng(23)
    lens = [1, 255, 256, 257, 600, 1300]
    c = Paged(rng, lens, 16, 3, 64, dtype)
    q = rng.standard_normal((len(lens), 9, 64)).astype(np.float32)
    crowd = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, **c.args())
    pre = ops.paged_attention_prefill(q, c.kc, c.vc, c.bt, c.lens, np.arange(len(lens) + 1, dtype=np.int32),
                                      **c.args())  # fmt: skip
    np.testing.assert_array_equal(crowd, pre)
    for s in range(len(lens)):
        alone = ops.paged_attention_decode(q[s:s + 1], c.kc, c.vc, c.bt[s:s + 1], c.lens[s:s + 1], **c.args())
        np.testing.assert_array_equal(alone[0], crowd[s])
    # the last 40 positions of the 1300-key sequence as a prompt chunk, and as two other chunks
    s, n = 5, 40
    qp = rng.standard_normal((n, 9, 64)).astype(np.float32)
    whole = ops.paged_attention_prefill(qp, c.kc, c.vc, c.bt[s:s + 1], c.lens[s:s + 1], np.array([0, n], np.int32),
                                        **c.args())  # fmt: skip
    part = ops.paged_attention_prefill(qp[:17], c.kc, c.vc, c.bt[s:s + 1], c.lens[s:s + 1] - (n - 17),
                                       np.array([0, 17], np.int32), **c.args())  # fmt: skip
    np.testing.assert_array_equal(part, whole[:17])
    last = ops.paged_attention_decode(qp[-1:], c.kc, c.vc, c.bt[s:s + 1], c.lens[s:s + 1], **c.args())
    np.testing.assert_array_equal(last[0], whole[-1])


def _int8_dots_emulation(q, kc, ks, vc, vs, bt, length, scale):
    """float64 model of the int8-dot decode path for one query row of one kv head (one split, no
    window): q rounded to int16 per row, scores q16 . k8 * qs * k_scale, online softmax over
    32-key tiles, each tile's weights p * v_scale rounded to uint8 against the tile's largest."""
    d = q.shape[-1]
    pos = np.arange(length)
    k8 = kc[bt[pos // kc.shape[1]], pos % kc.shape[1]].astype(np.float64)
    v8 = vc[bt[pos // vc.shape[1]], pos % vc.shape[1]].astype(np.float64)
    kscale = ks[bt[pos // kc.shape[1]], pos % kc.shape[1]].astype(np.float64)
    vscale = vs[bt[pos // vc.shape[1]], pos % vc.shape[1]].astype(np.float64)
    x = (q * np.float32(scale)).astype(np.float32)
    qmax = np.float32(min(32767, (2**31 - 1) // (128 * d)))
    amax = np.abs(x).max()
    q16 = np.rint(x * (qmax / amax)).astype(np.float64)
    s = (k8 @ q16) * float(amax / qmax) * kscale
    m, l, acc = -np.inf, 0.0, np.zeros(d)
    for t0 in range(0, length, 32):
        st = s[t0:t0 + 32]
        m_new = max(m, st.max())
        alpha = np.exp(m - m_new)
        p = np.exp(st - m_new)
        l = l * alpha + p.sum()
        pv = p * vscale[t0:t0 + 32]
        pm = pv.max()
        p8 = np.rint(pv * (255.0 / pm)) if pm > 0 else np.zeros_like(pv)
        acc = acc * alpha + pm / 255.0 * (p8 @ v8[t0:t0 + 32])
        m = m_new
    return acc / l


@pytest.mark.skipif(not (infercore.system_info()["cpu"]["avx512"] and infercore.system_info()["cpu"]["avx512_vnni"]),
                    reason="the int8-dot path needs AVX-512 VNNI")
@pytest.mark.parametrize("d", [64, 80, 128])
def test_int8_dots_compute_the_documented_rounding(d):
    # Each output of the int8-dot path against a float64 model of exactly its rounding (int16
    # queries, uint8 weights per tile): what is left is float32 arithmetic (max 5e-7 here). A
    # weight whose float32 and float64 values rounded to neighbouring uint8 codes would cost
    # ~1e-3 (none does with these seeds); a wrong lane order, scale or rounding costs 1e-2 and more.
    rng = np.random.default_rng(d)
    before = infercore.get_isa()
    infercore.set_isa("avx512")
    try:
        c = Paged(rng, [1, 31, 33, 250], 16, 2, d, "int8")
        q = (rng.standard_normal((4, 6, d)) * np.linspace(0.2, 3, d)).astype(np.float32)
        got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, num_splits=1, **c.args())
    finally:
        infercore.set_isa(before)
    for s_, length in enumerate(c.lens.tolist()):
        for h in range(6):
            kv = h // 3
            want = _int8_dots_emulation(q[s_, h], c.kc[:, :, kv], c.ks[:, :, kv], c.vc[:, :, kv], c.vs[:, :, kv],
                                        c.bt[s_], length, 1 / np.sqrt(d))
            np.testing.assert_allclose(got[s_, h], want, rtol=0, atol=1e-4, err_msg=f"seq {s_} head {h}")


@pytest.mark.parametrize("dt", ["int8", "float8_e4m3fn"])
@pytest.mark.parametrize("d", [1, 7, 33, 40, 80, 130])
def test_quantized_caches_at_odd_head_sizes(isa, dt, d):
    # Head sizes off the 32/64-dim steps of the low-precision paths (masked tails, zero-padded
    # query rows), decode and prefill, against float64 on the stored values; 1..70 keys cover
    # partial 16-key halves and whole tiles.
    rng = np.random.default_rng(d)
    lens = [1, 15, 17, 70]
    c = Paged(rng, lens, 16, 2, d, dt)
    q = rng.standard_normal((4, 6, d)).astype(np.float32)
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, c.ks, c.vs)
    got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, **c.args())
    np.testing.assert_allclose(got, want, rtol=0, atol=stored_tol(dt))
    new = [1, 5, 17, 30]
    qsl = np.concatenate([[0], np.cumsum(new)]).astype(np.int32)
    qp = rng.standard_normal((int(qsl[-1]), 6, d)).astype(np.float32)
    want = ref.paged_attention_prefill(qp, ks, vs, c.bt, c.lens, qsl, None, c.ks, c.vs)
    got = ops.paged_attention_prefill(qp, c.kc, c.vc, c.bt, c.lens, qsl, **c.args())
    np.testing.assert_allclose(got, want, rtol=0, atol=stored_tol(dt))


@pytest.mark.parametrize("dt", ["int8", "float8_e4m3fn"])
@pytest.mark.parametrize("qscale", [1e-30, 1e-3, 1.0, 8.0, 1e30])
def test_low_precision_paths_stay_below_the_storage_error(isa, dt, qscale):
    # The int8 (int16 q, uint8 p) and fp8 (float16) paths round q and p; at any query scale, from
    # nearly uniform attention (1e-30) to one-hot (1e30), that rounding must stay below what
    # storing K/V in the format costs (both measured against float64 on the same inputs). The
    # float paths (other ISA levels) sit at ~1e-7 here.
    rng = np.random.default_rng(int(np.log10(qscale)) + 40)
    c = Paged(rng, [3, 40, 300], 16, 2, 64, dt)
    q = (rng.standard_normal((3, 4, 64)) * qscale).astype(np.float32)
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, c.ks, c.vs)
    exact = ref.paged_attention_decode(q, c.kd, c.vd, c.bt, c.lens)
    got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, **c.args())
    assert np.isfinite(got).all()
    path = np.abs(got - want).max()
    storage = np.abs(want - exact).max()
    # measured at most 0.30 x (int8: the uint8 weights on 3-40 keys) and 0.014 x (fp8)
    assert path <= (0.5 if dt == "int8" else 0.1) * storage + 1e-5, (path, storage)


@pytest.mark.parametrize("dtype", ["int8", "float16"])
def test_decode_over_a_large_cache_gives_the_bits_of_smaller_calls(dtype):
    # A decode call reading >= 512 KB of K+V first touches each chunk's rows front to back
    # (csrc/cpu/attention.cpp touch_keys, kTouchBytes); that is reads only, so each sequence gets
    # the same bits as a call of its own (below 512 KB, no touch) with the same splits. int8: the
    # scales are touched too.
    rng = np.random.default_rng(17)
    bs, hkv, d = 16, 8, 128
    per_token = 2 * hkv * d * (1 if dtype == "int8" else 2)
    n = (512 << 10) // per_token * 9 // 10  # one sequence: 90% of the threshold, both: 180%
    lens = np.array([n, n - 10], np.int32)
    per = -(-int(lens.max()) // bs)
    nb = 2 * per + 3
    kw = {}
    if dtype == "int8":
        kc = rng.integers(-128, 128, (nb, bs, hkv, d), dtype=np.int8)
        vc = rng.integers(-128, 128, (nb, bs, hkv, d), dtype=np.int8)
        kw["k_scale"] = rng.uniform(0.005, 0.02, (nb, bs, hkv)).astype(np.float32)
        kw["v_scale"] = rng.uniform(0.005, 0.02, (nb, bs, hkv)).astype(np.float32)
    else:
        kc = rng.standard_normal((nb, bs, hkv, d)).astype(np.float16)
        vc = rng.standard_normal((nb, bs, hkv, d)).astype(np.float16)
    bt = rng.permutation(nb)[: 2 * per].reshape(2, per).astype(np.int32)
    q = rng.standard_normal((2, 32, d)).astype(np.float32)
    both = ops.paged_attention_decode(q, kc, vc, bt, lens, num_splits=3, **kw)
    assert np.isfinite(both).all()
    for s in range(2):
        one = ops.paged_attention_decode(q[s:s + 1], kc, vc, bt[s:s + 1], lens[s:s + 1], num_splits=3, **kw)
        np.testing.assert_array_equal(both[s], one[0])
