"""Triton paged attention: reshape_and_cache, decode (flash-decoding, split-K) and causal prefill
over an NHD paged cache [num_blocks, block_size, Hkv, D]. Same semantics as the CPU kernels
(csrc/cpu/attention.cpp, kv_quant.h): a stored value dequantizes to stored * scale, with one
scale per layer for float/fp8 caches (folded into q and into the output) and one float32 scale
per token and head for int8 caches (applied to the scores and to the probabilities).

Status: run only under TRITON_INTERPRET=1 (CPU) in this repository's tests; the GPU path was
compiled ahead of time for sm_80/sm_90 (scripts in tests/kernels/test_attention_triton.py) but
not run on a GPU yet.

Napkin math, decode (one token per sequence): per (sequence, kv head) and context token the
kernel reads 2 * D * itemsize bytes of K and V (+ 8 bytes of int8 scales) and does 4 * G * D
flops (G = Hq / Hkv). SmolLM2 (Hq 9, Hkv 3, D 64) float16, S = 16, context 4096: 50 MB and
113 MFLOP per call, i.e. ~15 us at an H100's 3.35 TB/s against ~2 us of float32 FMA issue:
memory bound by ~8x, so the work is to keep enough bytes in flight. Each program owns one
(sequence, kv head, split): it reads a [BLOCK_N, D] tile of K and of V once and serves the whole
GQA query group from it (a [G_PAD, D] x [D, BLOCK_N] tl.dot when the padded group is >= 16,
else a broadcast multiply-sum), with an online softmax in float32. Split-K (flash-decoding)
gives long contexts enough programs to fill the chip (~8 per SM); a second kernel merges the
splits' (max, sum, acc) partials (S * Hq * splits * (D + 2) floats, < 5% of the cache bytes).
fp8/int8 halve the bytes; fp8 decodes natively (sm_89+) or by bit manipulation.

Prefill: queries tiled as BLOCK_Q tokens x G_PAD heads of one kv head (BLOCK_M rows, so the
K/V tile serves the whole group), keys in BLOCK_N tiles through the block table, tl.dot for
both products, causal + sliding-window mask, online softmax: O(BLOCK_M * BLOCK_N) live scores,
never T x L. Flops 4 * T * L_avg * Hq * D; with the context re-read once per query tile, bytes
are ~ (T / BLOCK_Q) * L * Hkv * D * 2 * itemsize, so long prompts are compute bound.

Dot precision: float32 caches use input_precision="tf32x3" (three tf32 products, ~float32
accuracy for the 1e-5 budget; "ieee" FMA dots spilled registers at these tile sizes); 16-bit,
fp8 and int8 caches use tf32, which holds their stored values exactly (<= 11 significant bits)
and rounds only q and p (relative 2^-11). The interpreter computes every dot in float32.
"""

from __future__ import annotations

import contextlib
import functools
import os

import numpy as np
import torch
import triton
import triton.language as tl

KINDS = ("float32", "float16", "bfloat16", "float8_e4m3fn", "int8")
_FP8_MIN_NORMAL = tl.constexpr(0.015625)  # 2^-6 (globals used in kernels must be tl.constexpr)
_RNE_MAGIC = tl.constexpr(12582912.0)  # 1.5 * 2^23: (x + M) - M rounds |x| < 2^22 to nearest, ties to even

# Tests set this to force (True) or forbid (False) the native fp8 -> float conversion; None picks
# native on sm_89+ GPUs and the bit decoder elsewhere (sm_80, the interpreter).
FP8_NATIVE: bool | None = None
# Tests/benchmarks may force the decode score product: None = tl.dot when the padded GQA group
# is >= 16, True = always tl.dot (group padded to 16), False = always broadcast multiply-sum.
DECODE_DOT: bool | None = None


# ----------------------------------------------------------------------------------- helpers
@triton.jit
def _fp8_bits_to_f32(b):
    """E4M3FN bytes (uint8) -> float32, exact: subnormals m * 2^-9, 0x7F/0xFF NaN."""
    x = b.to(tl.int32) & 0xFF
    mag = x & 0x7F
    normal = ((mag << 20) + (120 << 23)).to(tl.float32, bitcast=True)  # rebias the exponent 7 -> 127
    sub = (x & 7).to(tl.float32) * 0.001953125
    v = tl.where((mag >> 3) == 0, sub, normal)
    v = tl.where(mag == 0x7F, float("nan"), v)
    return tl.where((x & 0x80) != 0, -v, v)


@triton.jit
def _f32_to_fp8_bits(x):
    """float32 -> E4M3FN code (int32 0..255): round-to-nearest-even, |x| >= 448 and +-inf -> +-448,
    NaN -> 0x7F with the sign. Mirrors fp8_e4m3_encode in csrc/cpu/kv_quant.h bit for bit."""
    u = x.to(tl.int32, bitcast=True)
    sign = (u >> 24) & 0x80
    a = u & 0x7FFFFFFF
    af = a.to(tl.float32, bitcast=True)
    small = tl.minimum(af, _FP8_MIN_NORMAL) * 512.0  # exact: a power-of-two scale
    sub = ((small + _RNE_MAGIC) - _RNE_MAGIC).to(tl.int32)
    ac = tl.minimum(a, 0x43E00000)  # 448.0: keeps the rounding add below overflow
    r = (ac + 0x7FFFF + ((ac >> 20) & 1)) >> 20
    code = tl.minimum(r - (120 << 3), 0x7E)
    code = tl.where(af < _FP8_MIN_NORMAL, sub, code)
    code = tl.where(af >= 448.0, 0x7E, code)
    code = tl.where(a > 0x7F800000, 0x7F, code)
    return sign | code


@triton.jit
def _f32_to_bf16_bits(x):
    """float32 -> bfloat16 bits (int16), round-to-nearest-even, NaN kept quiet: float_to_bf16 in
    csrc/core/dtype.h (the interpreter's own bfloat16 cast truncates)."""
    u = x.to(tl.int32, bitcast=True)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16  # int32 adds wrap like the uint32 ones
    r = tl.where((u & 0x7FFFFFFF) > 0x7F800000, (u >> 16) | 0x40, r)
    return r.to(tl.int16)


# ------------------------------------------------------------------------- reshape_and_cache
@triton.jit
def _write_row(X, OUT, SC, src, dst, sidx, inv, m, has_slot, KIND: tl.constexpr):
    x = tl.load(X + src, mask=m, other=0.0).to(tl.float32)
    if KIND == 4:  # int8: scale = absmax / 127 of the raw row (1 for zeros), q = rint(x / scale)
        amax = tl.max(tl.abs(x), axis=0)
        # IEEE divisions (div_rn): `/` is div.full/div.approx on the GPU and would miss the CPU's bits
        scale = tl.where(amax > 0.0, tl.math.div_rn(amax, tl.full(amax.shape, 127.0, tl.float32)), 1.0)
        rcp = tl.math.div_rn(tl.full(scale.shape, 1.0, tl.float32), scale)
        y = tl.minimum(tl.maximum(x * rcp, -127.0), 127.0)  # clamp first: rint commutes
        tl.store(OUT + dst, ((y + _RNE_MAGIC) - _RNE_MAGIC).to(tl.int8), mask=m)
        tl.store(SC + sidx, scale, mask=has_slot)
    elif KIND == 3:  # fp8 E4M3 bytes
        tl.store(OUT + dst, _f32_to_fp8_bits(x * inv).to(tl.uint8), mask=m)
    elif KIND == 2:  # bfloat16 (cache viewed as int16)
        tl.store(OUT + dst, _f32_to_bf16_bits(x * inv), mask=m)
    else:
        tl.store(OUT + dst, (x * inv).to(OUT.dtype.element_ty), mask=m)


@triton.jit
def _reshape_kernel(K, V, KC, VC, KS, VS, SLOTS, kinv, vinv,
                    HKV: tl.constexpr, D: tl.constexpr, D_PAD: tl.constexpr, KIND: tl.constexpr):  # fmt: skip
    """One program per (token, kv head): its K and V rows. KIND: 0 float32, 1 float16,
    2 bfloat16 (cache viewed as int16), 3 fp8 (viewed as uint8), 4 int8 (+ per-token-head scales)."""
    t = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1)
    slot = tl.load(SLOTS + t)
    has_slot = slot >= 0
    d = tl.arange(0, D_PAD)
    m = d < tl.where(has_slot, D, 0)  # (not `& has_slot`: the interpreter mistypes a vector & scalar mask)
    src = (t * HKV + h) * D + d
    dst = (slot * HKV + h) * D + d
    sidx = slot * HKV + h
    _write_row(K, KC, KS, src, dst, sidx, kinv, m, has_slot, KIND)
    _write_row(V, VC, VS, src, dst, sidx, vinv, m, has_slot, KIND)


# ------------------------------------------------------------------------------------ decode
@triton.jit
def _decode_kernel(Q, K, V, KS, VS, BT, LENS, OUT, PM, PL, PACC, qmul, vmul, window, max_blocks, splits,
                   HQ: tl.constexpr, HKV: tl.constexpr, G: tl.constexpr, D: tl.constexpr, BS: tl.constexpr,
                   G_PAD: tl.constexpr, D_PAD: tl.constexpr, BLOCK_N: tl.constexpr, DIRECT: tl.constexpr,
                   INT8: tl.constexpr, FP8_BITS: tl.constexpr, USE_DOT: tl.constexpr,
                   DOT_PREC: tl.constexpr):  # fmt: skip
    """Grid (S, Hkv, splits): keys [kb, ke) of sequence s for the G query heads of kv head h."""
    s = tl.program_id(0)
    h = tl.program_id(1)
    j = tl.program_id(2)
    length = tl.load(LENS + s)
    kb0 = tl.where(window > 0, tl.maximum(length - window, 0), 0)
    chunk = tl.cdiv(tl.cdiv(length - kb0, splits), BLOCK_N) * BLOCK_N  # tile-aligned split ranges
    kb = kb0 + j * chunk
    ke = tl.minimum(length, kb + chunk)

    g = tl.arange(0, G_PAD)
    d = tl.arange(0, D_PAD)
    gm = g < G
    dm = d < D
    rows = s.to(tl.int64) * HQ + h * G + g  # query head rows of this group
    q = tl.load(Q + rows[:, None] * D + d[None, :], mask=gm[:, None] & dm[None, :], other=0.0)
    q = q.to(tl.float32) * qmul

    m_i = tl.full([G_PAD], float("-inf"), tl.float32)
    l_i = tl.zeros([G_PAD], tl.float32)
    acc = tl.zeros([G_PAD, D_PAD], tl.float32)
    bt_row = BT + s.to(tl.int64) * max_blocks
    for start in range(kb, ke, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)
        pm = pos < ke
        blk = tl.load(bt_row + pos // BS, mask=pm, other=0)
        slot = blk.to(tl.int64) * BS + pos % BS
        offs = slot[:, None] * (HKV * D) + h * D + d[None, :]
        kvm = pm[:, None] & dm[None, :]
        # K/V tiles as float32 (inline, not a helper: the interpreter re-patches tl per nested call).
        # Masked loads take no `other` (it cannot be cast to an fp8 element type): where() zeroes them.
        if FP8_BITS:
            k = _fp8_bits_to_f32(tl.load(K + offs, mask=kvm, other=0))
            v = _fp8_bits_to_f32(tl.load(V + offs, mask=kvm, other=0))
        else:
            k = tl.where(kvm, tl.load(K + offs, mask=kvm).to(tl.float32), 0.0)
            v = tl.where(kvm, tl.load(V + offs, mask=kvm).to(tl.float32), 0.0)
        if USE_DOT:
            sc = tl.dot(q, tl.trans(k), input_precision=DOT_PREC)
        else:
            sc = tl.sum(q[:, None, :] * k[None, :, :], axis=2)
        if INT8:
            sc = sc * tl.load(KS + slot * HKV + h, mask=pm, other=0.0)[None, :]
        sc = tl.where(pm[None, :], sc, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(sc, axis=1))  # finite: every tile holds a key
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(sc - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        if INT8:
            p = p * tl.load(VS + slot * HKV + h, mask=pm, other=0.0)[None, :]
        if USE_DOT:
            pv = tl.dot(p, v, input_precision=DOT_PREC)
        else:
            pv = tl.sum(p[:, :, None] * v[None, :, :], axis=1)
        acc = acc * alpha[:, None] + pv
        m_i = m_new

    om = gm[:, None] & dm[None, :]
    if DIRECT:
        inv = tl.where(l_i > 0.0, vmul / tl.where(l_i > 0.0, l_i, 1.0), 0.0)
        tl.store(OUT + rows[:, None] * D + d[None, :], acc * inv[:, None], mask=om)
    else:
        part = rows * splits + j
        tl.store(PM + part, m_i, mask=gm)
        tl.store(PL + part, l_i, mask=gm)
        tl.store(PACC + part[:, None] * D + d[None, :], acc, mask=om)


@triton.jit
def _merge_kernel(PM, PL, PACC, OUT, vmul, splits,
                  D: tl.constexpr, D_PAD: tl.constexpr, SPLITS_PAD: tl.constexpr):  # fmt: skip
    """One program per (sequence, query head): log-sum-exp merge of the splits' partials."""
    r = tl.program_id(0).to(tl.int64)
    j = tl.arange(0, SPLITS_PAD)
    jm = j < splits
    d = tl.arange(0, D_PAD)
    m = tl.load(PM + r * splits + j, mask=jm, other=float("-inf"))
    lsum = tl.load(PL + r * splits + j, mask=jm, other=0.0)
    mx = tl.max(m, axis=0)
    w = tl.where(lsum > 0.0, tl.exp(m - mx), 0.0)  # empty splits (sum 0) weigh nothing
    total = tl.sum(w * lsum, axis=0)
    acc = tl.load(PACC + (r * splits + j)[:, None] * D + d[None, :], mask=jm[:, None] & (d[None, :] < D), other=0.0)
    o = tl.sum(w[:, None] * acc, axis=0)
    inv = tl.where(total > 0.0, vmul / tl.where(total > 0.0, total, 1.0), 0.0)
    tl.store(OUT + r * D + d, o * inv, mask=d < D)


# ----------------------------------------------------------------------------------- prefill
@triton.jit
def _prefill_kernel(Q, K, V, KS, VS, BT, LENS, QSL, TILES, OUT, qmul, vmul, window, max_blocks,
                    HQ: tl.constexpr, HKV: tl.constexpr, G: tl.constexpr, D: tl.constexpr, BS: tl.constexpr,
                    G_PAD: tl.constexpr, D_PAD: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_N: tl.constexpr,
                    INT8: tl.constexpr, FP8_BITS: tl.constexpr, DOT_PREC: tl.constexpr):  # fmt: skip
    """Grid (query tiles, Hkv): BLOCK_Q new tokens x G heads (rows r = token * G_PAD + head)
    of sequence TILES[i, 0] starting at its new token TILES[i, 1], against keys [lo, hi)."""
    BLOCK_M: tl.constexpr = BLOCK_Q * G_PAD
    tile = tl.program_id(0)
    h = tl.program_id(1)
    s = tl.load(TILES + 2 * tile)
    q0 = tl.load(TILES + 2 * tile + 1)
    length = tl.load(LENS + s)
    first = tl.load(QSL + s)
    n = tl.load(QSL + s + 1) - first
    r = tl.arange(0, BLOCK_M)
    qi = q0 + r // G_PAD  # new-token index within the sequence
    g = r % G_PAD
    rm = (qi < n) & (g < G)
    pos = length - n + qi  # absolute position of each row's token
    d = tl.arange(0, D_PAD)
    dm = d < D
    orow = (first + qi).to(tl.int64) * HQ + h * G + g
    q = tl.load(Q + orow[:, None] * D + d[None, :], mask=rm[:, None] & dm[None, :], other=0.0)
    q = q.to(tl.float32) * qmul

    hi = length - n + tl.minimum(q0 + BLOCK_Q, n)  # one past the tile's last position
    lo = tl.where(window > 0, tl.maximum(length - n + q0 + 1 - window, 0), 0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, D_PAD], tl.float32)
    bt_row = BT + s.to(tl.int64) * max_blocks
    for start in range(lo, hi, BLOCK_N):
        kpos = start + tl.arange(0, BLOCK_N)
        km = kpos < hi
        blk = tl.load(bt_row + kpos // BS, mask=km, other=0)
        slot = blk.to(tl.int64) * BS + kpos % BS
        offs = slot[:, None] * (HKV * D) + h * D + d[None, :]
        kvm = km[:, None] & dm[None, :]
        # K/V tiles as float32 (inline, not a helper: the interpreter re-patches tl per nested call).
        # Masked loads take no `other` (it cannot be cast to an fp8 element type): where() zeroes them.
        if FP8_BITS:
            k = _fp8_bits_to_f32(tl.load(K + offs, mask=kvm, other=0))
            v = _fp8_bits_to_f32(tl.load(V + offs, mask=kvm, other=0))
        else:
            k = tl.where(kvm, tl.load(K + offs, mask=kvm).to(tl.float32), 0.0)
            v = tl.where(kvm, tl.load(V + offs, mask=kvm).to(tl.float32), 0.0)
        sc = tl.dot(q, tl.trans(k), input_precision=DOT_PREC)
        if INT8:
            sc = sc * tl.load(KS + slot * HKV + h, mask=km, other=0.0)[None, :]
        ok = km[None, :] & (kpos[None, :] <= pos[:, None])
        ok = ok & ((window == 0) | (kpos[None, :] > pos[:, None] - window))
        sc = tl.where(ok, sc, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(sc, axis=1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows that have seen no key yet
        alpha = tl.exp(m_i - m_safe)
        p = tl.exp(sc - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, axis=1)
        if INT8:
            p = p * tl.load(VS + slot * HKV + h, mask=km, other=0.0)[None, :]
        acc = acc * alpha[:, None] + tl.dot(p, v, input_precision=DOT_PREC)
        m_i = m_new
    inv = tl.where(l_i > 0.0, vmul / tl.where(l_i > 0.0, l_i, 1.0), 0.0)
    tl.store(OUT + orow[:, None] * D + d[None, :], acc * inv[:, None], mask=rm[:, None] & dm[None, :])


# --------------------------------------------------------------------------------- launchers
def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _check_device(t: torch.Tensor, name: str) -> None:
    if t.device.type == "cuda":
        return
    if not _interpreting():
        raise ValueError(f"{name}: the Triton backend needs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1), "
                         f"got device {t.device}")


def _on(device: torch.device):
    """Launch on the tensors' GPU (Triton launches on the current device and stream)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _kind_code(kind: str) -> int:
    if kind not in KINDS:
        raise TypeError(f"k_cache: expected a cache dtype in {KINDS}, got {kind!r}")
    return KINDS.index(kind)


def _fp8_bits(cache: torch.Tensor) -> bool:
    """True: decode fp8 bytes by bit manipulation (no native E4M3 conversion on this target)."""
    if FP8_NATIVE is not None:
        return not FP8_NATIVE
    if cache.device.type != "cuda":
        return True
    return torch.cuda.get_device_capability(cache.device) < (8, 9)


def _kv_arg(cache: torch.Tensor, kind: str, bits: bool) -> torch.Tensor:
    if kind == "float8_e4m3fn":
        return cache.view(torch.uint8) if bits else cache.view(torch.float8_e4m3fn)
    return cache


def _dot_prec(kind: str) -> str:
    return "tf32x3" if kind == "float32" else "tf32"


def _scale_tensor(x, like: torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else like  # a placeholder pointer when unused


def reshape_and_cache(k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                      slot_mapping: torch.Tensor, kind: str, k_scale, v_scale) -> None:
    """Write k[t], v[t] ([T, Hkv, D]) at slot_mapping[t] (int64, -1 skips) of the caches, in place.
    Arguments are validated by infercore.ops.reshape_and_cache; kind names the cache dtype;
    k_scale/v_scale are floats (float/fp8 caches: stored = value / scale) or float32
    [num_blocks, block_size, Hkv] tensors written with the int8 per-token-head scales."""
    code = _kind_code(kind)
    _check_device(k_cache, "k_cache")
    t, hkv, d = k.shape
    if t == 0:
        return
    view = {2: torch.int16, 3: torch.uint8}.get(code)
    kc = k_cache.view(view) if view is not None else k_cache
    vc = v_cache.view(view) if view is not None else v_cache
    ks = _scale_tensor(k_scale, k)
    vs = _scale_tensor(v_scale, k)
    kinv = vinv = 1.0
    if code != 4:  # 1 / scale in float32, as the CPU writer computes it
        kinv = float(np.float32(1.0) / np.float32(k_scale))
        vinv = float(np.float32(1.0) / np.float32(v_scale))
    with _on(k_cache.device):
        _reshape_kernel[(t, hkv)](k, v, kc, vc, ks, vs, slot_mapping, kinv, vinv,
                                  HKV=hkv, D=d, D_PAD=max(16, triton.next_power_of_2(d)), KIND=code)


@functools.lru_cache(maxsize=16)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def default_splits(num_seqs: int, num_kv_heads: int, max_keys: int, device: torch.device) -> int:
    """Split-K count for decode: ~8 programs per SM, chunks of >= 128 keys (4 "SMs" when
    interpreting on the CPU)."""
    sms = _sm_count(device.index if device.index is not None else torch.cuda.current_device()) \
        if device.type == "cuda" else 4
    want = triton.cdiv(8 * sms, max(1, num_seqs * num_kv_heads))
    return max(1, min(want, triton.cdiv(max_keys, 128), 256))


def _decode_config(g: int, d_pad: int) -> tuple[int, bool, int, int]:
    """(G_PAD, USE_DOT, BLOCK_N, num_warps). Register counts from ahead-of-time sm_90 builds:
    broadcast [4, 16, 64] 127 at 4 warps, [4, 16, 128] 123 at 8; dot [16, 64 keys, 64] 113-205,
    [16, 32 keys, 128] 147-214 at 8 warps (fp16 .. float32 tf32x3); no spills."""
    use_dot = triton.next_power_of_2(g) >= 16 if DECODE_DOT is None else DECODE_DOT
    g_pad = max(16 if use_dot else 1, triton.next_power_of_2(g))
    if use_dot:
        return g_pad, True, (64 if d_pad <= 64 else 32), 8
    block_n = max(16, min(64, 4096 // (g_pad * d_pad)))  # [G_PAD, BLOCK_N, D_PAD] product <= 4-8k floats
    return g_pad, False, block_n, 8 if g_pad * block_n * d_pad > 4096 else 4


def _prefill_config(kind: str, g: int, d_pad: int) -> tuple[int, int, int, int]:
    """(G_PAD, BLOCK_Q, BLOCK_N, num_warps): 64 x 64 (D <= 64) or 64 x 32 score tiles at 8 warps,
    ~180-240 registers on sm_80/sm_90; float32 caches (3xTF32 dots) and int8 caches (whose
    64-row tiles spilled on sm_80) use 32-row tiles, and float32 at D = 128 16-row tiles (Triton
    3.6's 32-row build used 255 registers and 8 bytes of stack on an H200)."""
    g_pad = triton.next_power_of_2(g)
    if kind in ("float32", "int8"):
        block_m, block_n = (16 if kind == "float32" and d_pad >= 128 else 32), max(16, min(32, 2048 // d_pad))
    else:
        block_m, block_n = 64, max(16, min(64, 4096 // d_pad))
    return g_pad, max(1, block_m // g_pad), block_n, 8


def paged_attention_decode(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, kind: str,
                           block_tables: torch.Tensor, seq_lens: torch.Tensor, *, scale: float, k_scale=1.0,
                           v_scale=1.0, sliding_window: int = 0, num_splits: int = 1) -> torch.Tensor:
    """q [S, Hq, D] (contiguous, float32/16/bf16) -> float32 [S, Hq, D]. block_tables int32
    [S, max_blocks], seq_lens int32 [S], all on q's device and validated by the caller;
    k_scale/v_scale floats, or float32 [num_blocks, block_size, Hkv] tensors for int8."""
    code = _kind_code(kind)
    _check_device(q, "q")
    s, hq, d = q.shape
    _nb, bs, hkv, _ = k_cache.shape
    g = hq // hkv
    out = torch.empty((s, hq, d), dtype=torch.float32, device=q.device)
    if s == 0:
        return out
    d_pad = max(16, triton.next_power_of_2(d))
    g_pad, use_dot, block_n, warps = _decode_config(g, d_pad)
    splits = max(1, int(num_splits))
    int8 = code == 4
    qmul = scale * (1.0 if int8 else float(k_scale))
    vmul = 1.0 if int8 else float(v_scale)
    bits = code == 3 and _fp8_bits(k_cache)
    kc, vc = _kv_arg(k_cache, kind, bits), _kv_arg(v_cache, kind, bits)
    ks, vs = _scale_tensor(k_scale, out), _scale_tensor(v_scale, out)
    if splits > 1:
        pm = torch.empty((s * hq * splits,), dtype=torch.float32, device=q.device)
        pl = torch.empty_like(pm)
        pacc = torch.empty((s * hq * splits, d), dtype=torch.float32, device=q.device)
    else:
        pm = pl = pacc = out  # unused
    with _on(q.device):
        _decode_kernel[(s, hkv, splits)](
            q, kc, vc, ks, vs, block_tables, seq_lens, out, pm, pl, pacc, qmul, vmul, int(sliding_window),
            block_tables.shape[1], splits, HQ=hq, HKV=hkv, G=g, D=d, BS=bs, G_PAD=g_pad, D_PAD=d_pad,
            BLOCK_N=block_n, DIRECT=splits == 1, INT8=int8, FP8_BITS=bits, USE_DOT=use_dot,
            DOT_PREC=_dot_prec(kind), num_warps=warps)
        if splits > 1:
            _merge_kernel[(s * hq,)](pm, pl, pacc, out, vmul, splits, D=d, D_PAD=d_pad,
                                     SPLITS_PAD=max(2, triton.next_power_of_2(splits)), num_warps=4)
    return out


def prefill_tiles(query_start_loc: list[int], block_q: int) -> list[int]:
    """Flat (sequence, first new token) pairs of the query tiles, longest-context tiles first."""
    tiles = []
    for s in range(len(query_start_loc) - 1):
        n = query_start_loc[s + 1] - query_start_loc[s]
        tiles += [(s, q0) for q0 in range(0, n, block_q)]
    tiles.reverse()
    return [x for pair in tiles for x in pair]


def paged_attention_prefill(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, kind: str,
                            block_tables: torch.Tensor, seq_lens: torch.Tensor, query_start_loc: torch.Tensor,
                            qsl_host: list[int], *, scale: float, k_scale=1.0, v_scale=1.0,
                            sliding_window: int = 0) -> torch.Tensor:
    """q [T, Hq, D] packed over sequences (query_start_loc int32 [S+1] on q's device, and the
    same values as a host list) -> float32 [T, Hq, D]. Validated by the caller."""
    code = _kind_code(kind)
    _check_device(q, "q")
    t, hq, d = q.shape
    _nb, bs, hkv, _ = k_cache.shape
    g = hq // hkv
    out = torch.zeros((t, hq, d), dtype=torch.float32, device=q.device)
    if t == 0:
        return out
    d_pad = max(16, triton.next_power_of_2(d))
    g_pad, block_q, block_n, warps = _prefill_config(kind, g, d_pad)
    tiles = prefill_tiles(qsl_host, block_q)
    tiles_t = torch.tensor(tiles, dtype=torch.int32).to(q.device)
    int8 = code == 4
    qmul = scale * (1.0 if int8 else float(k_scale))
    vmul = 1.0 if int8 else float(v_scale)
    bits = code == 3 and _fp8_bits(k_cache)
    kc, vc = _kv_arg(k_cache, kind, bits), _kv_arg(v_cache, kind, bits)
    ks, vs = _scale_tensor(k_scale, out), _scale_tensor(v_scale, out)
    with _on(q.device):
        _prefill_kernel[(len(tiles) // 2, hkv)](
            q, kc, vc, ks, vs, block_tables, seq_lens, query_start_loc, tiles_t, out, qmul, vmul,
            int(sliding_window), block_tables.shape[1], HQ=hq, HKV=hkv, G=g, D=d, BS=bs, G_PAD=g_pad, D_PAD=d_pad,
            BLOCK_Q=block_q, BLOCK_N=block_n, INT8=int8, FP8_BITS=bits, DOT_PREC=_dot_prec(kind), num_warps=warps)
    return out
