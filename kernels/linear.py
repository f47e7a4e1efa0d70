"""Triton ops.linear: y = x @ W.T (+ bias) for every quant.QuantizedWeight kind, reading the weight
bytes exactly as QuantizedWeight holds them on the host (uploaded as-is, no repacking).

Paths (the same semantics as the CPU kernels and ops/linear.py `_reference`, per row count M):
  M <= 8 (decode): GEMV. Grid (cdiv(N, BN), split): each program streams BN weight rows once over
     its K range and keeps all M activation rows in registers, so every weight byte is read once.
     When cdiv(N, BN) is too small to fill the GPU, K is split over programs (fp32 partials
     [split, M, N], summed by torch, deterministic order).
  8 < M < 64 with a quantized kind (int8, int4, q8_0, q4_0, q4_1), and every M > 8 for the
     block kinds (int4, q8_0, q4_0, q4_1; the CPU runs them on int8 activations at every size):
     integer tl.dot on int8
     activations quantized dynamically (per token for int8, per block of 32 for the block kinds)
     by `_quant_kernel`, scales applied per K block of 32 (block kinds) or in the epilogue (int8).
  Otherwise (float kinds above 8 rows, int8/fp8 from 64 rows): float tl.dot. Weights are
     dequantized tile by tile in registers into the compute type CT = x's dtype (float16 /
     bfloat16; float32 activations use CT float32 with input_precision "tf32x3", ~fp32 accuracy).
     Per-out-channel scales (int8, fp8) stay out of the tile (int8 codes and fp8 values are exact
     in float16/bfloat16) and are applied in the epilogue; the block kinds' per-32 scales are
     applied in the tile (one rounding to CT per weight in fp16/bf16, none in fp32).
  Quantized activations (M < 64 rows; the block kinds always): d = absmax / 127, q = rint(x / d) in IEEE float32
  (`div_rn`, round half to even by the 1.5 * 2^23 trick); a row (block) holding NaN/inf gets
  d = NaN and so a NaN output row, like the CPU kernels.

Napkin math (H100 SXM: ~3.35 TB/s HBM3, ~990 TFLOP/s dense fp16, ~1980 TOP/s int8):
  GEMV 4096 x 4096, M = 1: int8 16.8 MB (q4_0 9.4 MB, fp16 33.5 MB) for 33.5 MFLOP = 2 flop/byte:
     bound by the weight read, 5.0 us for int8, 2.8 us for q4_0, 10 us for fp16 at full HBM.
  GEMM M = 512, 4096 x 4096: 17.2 GFLOP: 17 us at the fp16 tensor-core peak; the weight tile is
     dequantized once per BM = 128 rows, so dequantization costs ~1/128 of the MACs in ALU ops.
These kernels are checked under TRITON_INTERPRET=1 (numpy) in tests; on a GPU they have been
neither run nor timed in this change (no device was available): see tests/gpu and
benchmarks/bench_linear.py for the checks that a GPU session runs.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

KIND_CODES = {"f32": 0, "f16": 1, "bf16": 2, "fp8": 3, "int8": 4, "int4": 5, "q8_0": 6, "q4_0": 7, "q4_1": 8}
QUANT_ACT_KINDS = ("int8", "int4", "q8_0", "q4_0", "q4_1")
GEMV_MAX_ROWS = 8
GEMM_MIN_ROWS_QUANT = 64  # mirrors ops/linear.py and csrc/cpu/linear.h
BLOCK_A8_KINDS = ("int4", "q8_0", "q4_0", "q4_1")  # per-block int8 activations at every size (ops/linear.py)
# Bytes per block of 32 values in a weight row (int4's float16 scales live apart, per group).
BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "int4": 16}
_WEIGHT_DTYPES = {
    "f32": torch.float32, "f16": torch.float16, "bf16": torch.int16, "fp8": torch.uint8, "int8": torch.int8,
    "int4": torch.uint8, "q8_0": torch.uint8, "q4_0": torch.uint8, "q4_1": torch.uint8,
}  # fmt: skip
_CT = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}


# ------------------------------------------------------------------------------ weight decoding
@triton.jit
def _rint(v):
    """Round half to even for |v| < 2^22 (exact in IEEE float32: adding 1.5 * 2^23 leaves no
    fraction bits)."""
    return (v + 12582912.0) - 12582912.0


@triton.jit
def _half_bits(W16, idx, mask):
    """float32 of the float16 stored as int16 at W16[idx]."""
    return tl.load(W16 + idx, mask=mask, other=0).to(tl.float16, bitcast=True).to(tl.float32)


@triton.jit
def _fp8_over_256(b):
    """E4M3FN codes (int32 0..255) -> their value / 256 as float16 (exact: the E4M3 bits moved into
    float16's exponent/mantissa fields); 0x7F/0xFF -> NaN."""
    h = ((b & 0x80) << 8) | ((b & 0x7F) << 7)
    v = h.to(tl.int16).to(tl.float16, bitcast=True)
    return tl.where((b & 0x7F) == 0x7F, float("nan"), v.to(tl.float32)).to(tl.float16)


@triton.jit
def _block_codes(W, n2, k2, mask, rb, KIND: tl.constexpr):
    """Integer codes (int32) of the block kinds at (row n2, column k2), any broadcast shape.
    q8_0: int8 q; q4_0 / int4: nibble - 8; q4_1: nibble (0..15)."""
    i = k2 % 32
    blk = k2 // 32
    if KIND == 6:
        q = tl.load(W + n2 * rb + blk * 34 + 2 + i, mask=mask, other=0).to(tl.int8, bitcast=True).to(tl.int32)
    else:
        if KIND == 5:
            off = n2 * rb + blk * 16 + (i % 16)
        elif KIND == 7:
            off = n2 * rb + blk * 18 + 2 + (i % 16)
        else:
            off = n2 * rb + blk * 20 + 4 + (i % 16)
        byte = tl.load(W + off, mask=mask, other=0).to(tl.int32)
        q = (byte >> ((i // 16) * 4)) & 0xF
        if KIND != 8:
            q = q - 8
    return q


@triton.jit
def _block_scales(W16, GS, n2, blk, mask, rb, gpr, group, KIND: tl.constexpr):
    """(d, m) float32 of weight row n2's block blk (block of 32 values); m is 0 except for q4_1."""
    if KIND == 5:
        d = tl.load(GS + n2 * gpr + (blk * 32) // group, mask=mask, other=0.0).to(tl.float32)
        m = d * 0.0
    elif KIND == 6:
        d = _half_bits(W16, (n2 * rb + blk * 34) // 2, mask)
        m = d * 0.0
    elif KIND == 7:
        d = _half_bits(W16, (n2 * rb + blk * 18) // 2, mask)
        m = d * 0.0
    else:
        base = (n2 * rb + blk * 20) // 2
        d = _half_bits(W16, base, mask)
        m = _half_bits(W16, base + 1, mask)
    return d, m


@triton.jit
def _weight_tile(W, W16, GS, n2, k2, mask, rb, gpr, group, KIND: tl.constexpr):
    """float32 weights at (n2, k2): f32/f16/bf16 exact; fp8 as value / 256 (scale * 256 applied
    by the caller); int8 as the integer code (scale applied by the caller); int4 and the block
    kinds fully dequantized (q * d (+ m)), as QuantizedWeight.dequantize computes them."""
    if KIND == 0:
        w = tl.load(W + n2 * rb + k2, mask=mask, other=0.0)
    elif KIND == 1:
        w = tl.load(W + n2 * rb + k2, mask=mask, other=0.0).to(tl.float32)
    elif KIND == 2:
        bits = tl.load(W + n2 * rb + k2, mask=mask, other=0).to(tl.uint16, bitcast=True).to(tl.uint32)
        w = (bits << 16).to(tl.float32, bitcast=True)
    elif KIND == 3:
        b = tl.load(W + n2 * rb + k2, mask=mask, other=0).to(tl.int32)
        w = _fp8_over_256(b).to(tl.float32)
    elif KIND == 4:
        w = tl.load(W + n2 * rb + k2, mask=mask, other=0).to(tl.float32)
    else:
        q = _block_codes(W, n2, k2, mask, rb, KIND)
        d, m = _block_scales(W16, GS, n2, k2 // 32, mask, rb, gpr, group, KIND)
        if KIND == 8:
            w = q.to(tl.float32) * d + m
        else:
            w = q.to(tl.float32) * d
    return w


@triton.jit
def _channel_scale(WS, rn, n_ok, KIND: tl.constexpr):
    """Per-out-channel factor of the epilogue: int8 scale, fp8 scale * 256, else 1."""
    if KIND == 3:
        s = tl.load(WS + rn, mask=n_ok, other=0.0) * 256.0
    elif KIND == 4:
        s = tl.load(WS + rn, mask=n_ok, other=0.0)
    else:
        s = tl.full(rn.shape, 1.0, tl.float32)
    return s


# ---------------------------------------------------------------------- activation quantization
@triton.jit
def _quant_kernel(X, XQ, XD, K, stride_x, stride_q, nb, PER_ROW: tl.constexpr, BLOCK: tl.constexpr,
                  NBT: tl.constexpr):  # fmt: skip
    """PER_ROW (int8 W8A8): program m quantizes row m with one scale XD[m].
    Else: program (m, t) quantizes NBT blocks of 32 of row m, scales XD[m, b]."""
    m = tl.program_id(0).to(tl.int64)
    xr = X + m * stride_x
    qr = XQ + m * stride_q
    if PER_ROW:
        amax = tl.zeros([BLOCK], tl.float32)
        bad = tl.zeros([BLOCK], tl.int32)
        for k0 in range(0, K, BLOCK):
            rk = k0 + tl.arange(0, BLOCK)
            a = tl.abs(tl.load(xr + rk, mask=rk < K, other=0.0).to(tl.float32))
            fin = a < float("inf")
            amax = tl.maximum(amax, tl.where(fin, a, 0.0))
            bad += tl.where(fin, 0, 1)
        d = tl.math.div_rn(tl.max(amax, axis=0), 127.0)
        ok = tl.sum(bad, axis=0) == 0
        for k0 in range(0, K, BLOCK):
            rk = k0 + tl.arange(0, BLOCK)
            v = tl.load(xr + rk, mask=rk < K, other=0.0).to(tl.float32)
            q = tl.where(d > 0, _rint(tl.math.div_rn(v, tl.where(d > 0, d, 1.0))), 0.0)
            q = tl.where(ok, tl.minimum(tl.maximum(q, -127.0), 127.0), 0.0)
            tl.store(qr + rk, q.to(tl.int8), mask=rk < K)
        tl.store(XD + m, tl.where(ok, d, float("nan")))
    else:
        rb = tl.program_id(1) * NBT + tl.arange(0, NBT)
        rk = rb[:, None] * 32 + tl.arange(0, 32)[None, :]
        bmask = rb < nb
        v = tl.load(xr + rk, mask=bmask[:, None], other=0.0).to(tl.float32)
        a = tl.abs(v)
        fin = a < float("inf")
        d = tl.math.div_rn(tl.max(tl.where(fin, a, 0.0), axis=1), 127.0)
        ok = tl.sum(tl.where(fin, 0, 1), axis=1) == 0
        dd = d[:, None]
        q = tl.where(dd > 0, _rint(tl.math.div_rn(v, tl.where(dd > 0, dd, 1.0))), 0.0)
        q = tl.where(ok[:, None], tl.minimum(tl.maximum(q, -127.0), 127.0), 0.0)
        tl.store(qr + rk, q.to(tl.int8), mask=bmask[:, None])
        tl.store(XD + m * nb + rb, tl.where(ok, d, float("nan")), mask=bmask)


# ------------------------------------------------------------------------------------- GEMV
@triton.jit
def _gemv_kernel(
    X, XQ, XD, W, W16, WS, BIAS, Y, M, N, K, stride_x, stride_q, rb, gpr, group, k_split,
    KIND: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, HAS_BIAS: tl.constexpr,
    PARTIAL: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    rm = tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    m_ok = rm < M
    n_ok = rn < N
    n2 = rn.to(tl.int64)[:, None]
    k_begin = pid_k * k_split
    k_end = tl.minimum(K, k_begin + k_split)
    if KIND <= 3:  # float activations, weights decoded to float32
        acc = tl.zeros([BM, BN], tl.float32)
        for k0 in range(k_begin, k_end, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < k_end
            x = tl.load(X + rm[:, None] * stride_x + rk[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            w = _weight_tile(W, W16, WS, n2, rk[None, :], n_ok[:, None] & k_ok[None, :], rb, gpr, group, KIND)
            acc += tl.sum(x.to(tl.float32)[:, None, :] * w[None, :, :], axis=2)
        acc = acc * _channel_scale(WS, rn, n_ok, KIND)[None, :]
    elif KIND == 4:  # int8 W8A8: exact int32 dot, then token scale * channel scale
        acc_i = tl.zeros([BM, BN], tl.int32)
        for k0 in range(k_begin, k_end, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < k_end
            xq = tl.load(XQ + rm[:, None] * stride_q + rk[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0)
            w = tl.load(W + n2 * rb + rk[None, :], mask=n_ok[:, None] & k_ok[None, :], other=0)
            acc_i += tl.sum(xq.to(tl.int32)[:, None, :] * w.to(tl.int32)[None, :, :], axis=2)
        xd = tl.load(XD + rm, mask=m_ok, other=0.0)
        ws = tl.load(WS + rn, mask=n_ok, other=0.0)
        acc = acc_i.to(tl.float32) * (xd[:, None] * ws[None, :])
    else:  # block kinds: one block of 32 per step, int32 block dot times d_x * d_w (+ m * d_x * sum q_x)
        acc = tl.zeros([BM, BN], tl.float32)
        ri = tl.arange(0, 32)
        nbx = stride_q // 32
        for blk in range(k_begin // 32, k_end // 32):
            xq = tl.load(XQ + rm[:, None] * stride_q + blk * 32 + ri[None, :], mask=m_ok[:, None], other=0)
            xq = xq.to(tl.int32)
            dx = tl.load(XD + rm * nbx + blk, mask=m_ok, other=0.0)
            q = _block_codes(W, n2, blk * 32 + ri[None, :], n_ok[:, None], rb, KIND)
            dw, mw = _block_scales(W16, WS, rn.to(tl.int64), blk, n_ok, rb, gpr, group, KIND)
            p = tl.sum(xq[:, None, :] * q[None, :, :], axis=2)
            acc += p.to(tl.float32) * (dx[:, None] * dw[None, :])
            if KIND == 8:
                sx = tl.sum(xq, axis=1).to(tl.float32)
                acc += (dx * sx)[:, None] * mw[None, :]
    out_mask = m_ok[:, None] & n_ok[None, :]
    if PARTIAL:
        tl.store(Y + pid_k * M * N + rm[:, None] * N + rn[None, :], acc, mask=out_mask)
    else:
        if HAS_BIAS:
            acc += tl.load(BIAS + rn, mask=n_ok, other=0.0)[None, :]
        tl.store(Y + rm[:, None] * N + rn[None, :], acc.to(Y.dtype.element_ty), mask=out_mask)


# ------------------------------------------------------------------------------------- GEMM
@triton.jit
def _gemm_kernel(
    X, XQ, XD, W, W16, WS, BIAS, Y, M, N, K, stride_x, stride_q, rb, gpr, group,
    KIND: tl.constexpr, QACT: tl.constexpr, OT: tl.constexpr, CT: tl.constexpr, PREC: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, HAS_BIAS: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    m_ok = rm < M
    n_ok = rn < N
    rm64 = rm.to(tl.int64)
    n2 = rn.to(tl.int64)[None, :]  # weight tiles are [BK, BN]
    if QACT and KIND == 4:  # int8 x int8 tensor cores, exact int32 accumulation
        acc_i = tl.zeros([BM, BN], tl.int32)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < K
            xq = tl.load(XQ + rm64[:, None] * stride_q + rk[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0)
            w = tl.load(W + n2 * rb + rk[:, None], mask=k_ok[:, None] & n_ok[None, :], other=0)
            acc_i = tl.dot(xq, w, acc_i, out_dtype=tl.int32)
        xd = tl.load(XD + rm, mask=m_ok, other=0.0)
        ws = tl.load(WS + rn, mask=n_ok, other=0.0)
        acc = acc_i.to(tl.float32) * (xd[:, None] * ws[None, :])
    elif QACT:  # block kinds: one int8 dot per block of 32, scaled by d_x (row) * d_w (column)
        acc = tl.zeros([BM, BN], tl.float32)
        ri = tl.arange(0, 32)
        nbx = stride_q // 32
        for blk in range(0, K // 32):
            rk = blk * 32 + ri
            xq = tl.load(XQ + rm64[:, None] * stride_q + rk[None, :], mask=m_ok[:, None], other=0)
            dx = tl.load(XD + rm64 * nbx + blk, mask=m_ok, other=0.0)
            q = _block_codes(W, n2, rk[:, None], n_ok[None, :], rb, KIND)
            dw, mw = _block_scales(W16, WS, rn.to(tl.int64), blk, n_ok, rb, gpr, group, KIND)
            p = tl.dot(xq, q.to(tl.int8), out_dtype=tl.int32)
            acc += p.to(tl.float32) * (dx[:, None] * dw[None, :])
            if KIND == 8:
                sx = tl.sum(xq.to(tl.int32), axis=1).to(tl.float32)
                acc += (dx * sx)[:, None] * mw[None, :]
    else:  # float activations in CT, weights dequantized tile by tile into CT
        acc = tl.zeros([BM, BN], tl.float32)
        for k0 in range(0, K, BK):
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < K
            x = tl.load(X + rm64[:, None] * stride_x + rk[None, :], mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            w = _weight_tile(W, W16, WS, n2, rk[:, None], k_ok[:, None] & n_ok[None, :], rb, gpr, group, KIND)
            # operands rounded to OT, multiplied as CT (the same type but for the interpreter, below)
            acc = tl.dot(x.to(OT).to(CT), w.to(OT).to(CT), acc, input_precision=PREC)
        acc = acc * _channel_scale(WS, rn, n_ok, KIND)[None, :]
    if HAS_BIAS:
        acc += tl.load(BIAS + rn, mask=n_ok, other=0.0)[None, :]
    tl.store(Y + rm64[:, None] * N + rn[None, :], acc.to(Y.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


# ---------------------------------------------------------------------------------- launcher
def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _row_units(kind: str, k: int) -> int:
    """Row stride of the weight tensor in its own elements."""
    if kind in BLOCK_BYTES:
        return k // 32 * BLOCK_BYTES[kind]
    return k


def check_weight(kind: str, shape: tuple[int, int], data: torch.Tensor, scale: torch.Tensor | None,
                 group_size: int | None, device: torch.device) -> None:  # fmt: skip
    """ValueError/TypeError naming the field when the tensors do not hold `kind`'s layout."""
    if kind not in KIND_CODES:
        raise ValueError(f"kind: expected one of {tuple(KIND_CODES)}, got {kind!r}")
    n, k = shape
    if not isinstance(data, torch.Tensor):
        raise TypeError(f"w.data: expected a torch.Tensor, got {type(data).__name__}")
    if data.device != device:
        raise ValueError(f"w.data: expected a tensor on {device} like x, got {data.device}")
    if data.dtype != _WEIGHT_DTYPES[kind]:
        raise TypeError(f"w.data: expected dtype {_WEIGHT_DTYPES[kind]} for kind {kind!r}, got {data.dtype}")
    want = (n, k // 2) if kind == "int4" else (n, _row_units(kind, k))
    if kind in BLOCK_BYTES and k % 32:
        raise ValueError(f"w: K={k} must be a multiple of 32 for kind {kind!r}")
    if tuple(data.shape) != want or not data.is_contiguous():
        raise ValueError(f"w.data: expected a contiguous tensor of shape {want}, got {tuple(data.shape)}")
    if kind in ("int8", "fp8"):
        if not isinstance(scale, torch.Tensor) or scale.dtype != torch.float32 or tuple(scale.shape) != (n,):
            raise ValueError(f"w.scale: expected a float32 tensor of shape ({n},) for kind {kind!r}")
    if kind == "int4":
        if group_size not in (32, 64, 128) or k % group_size:
            raise ValueError(f"w.group_size: expected 32, 64 or 128 dividing K={k}, got {group_size}")
        if not isinstance(scale, torch.Tensor) or scale.dtype != torch.float16 or \
                tuple(scale.shape) != (n, k // group_size):  # fmt: skip
            raise ValueError(f"w.scale: expected a float16 tensor of shape ({n}, {k // group_size})")
    if scale is not None and (scale.device != device or not scale.is_contiguous()):
        raise ValueError(f"w.scale: expected a contiguous tensor on {device} like x")


def _quantize_acts(x: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(xq int8 [M, KP] with KP = K rounded up to 32 (zero padded), d float32 [M] or [M, K/32])."""
    m, k = x.shape
    kp = (k + 31) // 32 * 32
    xq = torch.zeros((m, kp), dtype=torch.int8, device=x.device)
    if kind == "int8":
        xd = torch.empty((m,), dtype=torch.float32, device=x.device)
        block = min(triton.next_power_of_2(max(k, 1)), 2048)
        _quant_kernel[(m,)](x, xq, xd, k, x.stride(0), kp, 1, PER_ROW=True, BLOCK=block, NBT=1)
    else:
        nb = k // 32
        xd = torch.empty((m, nb), dtype=torch.float32, device=x.device)
        nbt = 16
        _quant_kernel[(m, triton.cdiv(nb, nbt))](x, xq, xd, k, x.stride(0), kp, nb, PER_ROW=False, BLOCK=32, NBT=nbt)
    return xq, xd


def _int16_fake_quant(x: torch.Tensor) -> torch.Tensor:
    """x [M, K] rounded to the int8 GEMM's int16 activation codes times their row scale (what the
    CPU's W8A16 GEMM multiplies, csrc/cpu/gemm_int16_impl.h): d = absmax/32767, q = clip(rint(x *
    (1/d)), +-32767), all in float32; a row holding NaN/inf becomes NaN. Returned in x's dtype."""
    xf = x.float()
    finite = torch.isfinite(xf).all(dim=1, keepdim=True)
    amax = torch.where(torch.isfinite(xf), xf.abs(), torch.zeros_like(xf)).amax(dim=1, keepdim=True)
    d = amax / 32767.0
    inv = 1.0 / torch.where(d > 0, d, torch.ones_like(d))
    q = torch.clamp(torch.round(xf * inv), -32767.0, 32767.0)
    xh = torch.where(finite, q * d, torch.full_like(xf, float("nan")))
    return xh.to(x.dtype)


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    return int(torch.cuda.get_device_properties(device).multi_processor_count)


def linear(
    x: torch.Tensor, kind: str, shape: tuple[int, int], data: torch.Tensor, scale: torch.Tensor | None,
    group_size: int | None, bias: torch.Tensor | None = None, *, split_k: int | None = None,
    w8a8: bool = False,
) -> torch.Tensor:  # fmt: skip
    """y [M, N] (x's dtype) = x [M, K] @ W.T (+ bias float32 [N]) for a weight of `kind` whose
    packed tensors (data, scale) live on x's device in QuantizedWeight's layout (bf16 bits as
    int16). split_k: GEMV only, the number of K splits (default: enough programs to fill the
    GPU's SMs twice; tests force it). w8a8: int8 weights keep 8-bit per-token activations from
    GEMM_MIN_ROWS_QUANT rows too (ops.linear precision "high", as on the CPU)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.dtype not in _CT:
        raise ValueError("x: expected a 2-D float32/float16/bfloat16 torch tensor")
    if x.device.type != "cuda" and not _interpreted():
        raise ValueError(f"x: the Triton kernels need CUDA tensors (or TRITON_INTERPRET=1), got {x.device}")
    n, k = (int(s) for s in shape)
    if int(x.shape[1]) != k:
        raise ValueError(f"x: last dimension {int(x.shape[1])} does not match w's K={k}")
    check_weight(kind, (n, k), data, scale, group_size, x.device)
    if bias is not None and (bias.dtype != torch.float32 or tuple(bias.shape) != (n,) or bias.device != x.device):
        raise ValueError(f"bias: expected a float32 tensor of shape ({n},) on {x.device}")
    x = x.contiguous()
    m = int(x.shape[0])
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    if m == 0 or n == 0:
        return y
    if k == 0:
        y.copy_((bias if bias is not None else torch.zeros(n, device=x.device)).expand(m, n))
        return y
    code = KIND_CODES[kind]
    rb = _row_units(kind, k)
    gpr = k // group_size if kind == "int4" else 1
    group = group_size if kind == "int4" else 32
    w16 = data.view(torch.int16) if kind in ("q8_0", "q4_0", "q4_1") else data
    ws = scale if scale is not None else data
    # the CPU's activation codes: per block of 32 for the block kinds at every size, per row for
    # int8 below GEMM_MIN_ROWS_QUANT rows (at every size with w8a8)
    w8a8 = bool(w8a8) and kind == "int8"
    quant_acts = kind in QUANT_ACT_KINDS and (m < GEMM_MIN_ROWS_QUANT or kind in BLOCK_A8_KINDS or w8a8)
    if kind == "int8" and not quant_acts:  # the same int16 activation codes as the CPU
        x = _int16_fake_quant(x)
    xq, xd = _quantize_acts(x, kind) if quant_acts else (x, x)
    stride_q = int(xq.shape[1]) if quant_acts else 0
    has_bias = bias is not None
    b = bias if has_bias else x
    if m <= GEMV_MAX_ROWS:
        bm = triton.next_power_of_2(m)
        bk = 32 if kind in BLOCK_BYTES else 64
        bn = max(8, min(128, 4096 // (bm * bk)))
        progs_n = triton.cdiv(n, bn)
        if split_k is None:
            split_k = max(1, min(triton.cdiv(2 * _sm_count(x.device), progs_n), triton.cdiv(k, 4 * bk)))
        if isinstance(split_k, bool) or not isinstance(split_k, int) or split_k < 1:
            raise ValueError(f"split_k: expected a positive int, got {split_k!r}")
        k_split = triton.cdiv(triton.cdiv(k, split_k), bk) * bk
        splits = triton.cdiv(k, k_split)
        out = y if splits == 1 else torch.empty((splits, m, n), dtype=torch.float32, device=x.device)
        _gemv_kernel[(progs_n, splits)](
            x, xq, xd, data, w16, ws, b, out, m, n, k, x.stride(0), stride_q, rb, gpr, group, k_split,
            KIND=code, BM=bm, BN=bn, BK=bk, HAS_BIAS=has_bias, PARTIAL=splits > 1, num_warps=4,
        )  # fmt: skip
        if splits > 1:
            acc = out.sum(dim=0)
            if has_bias:
                acc += bias
            y.copy_(acc)
        return y
    # integer tiles (the block kinds above 64 rows) stay at BM 64, the size they were written for
    bm = 16 if m <= 16 else 32 if m <= 32 else 64 if m <= 64 or _interpreted() or quant_acts else 128
    bn = 64 if _interpreted() else 128
    bk = 32 if (quant_acts and kind != "int8") else 64
    ot = ct = _CT[x.dtype]
    prec = "tf32x3" if x.dtype == torch.float32 else "tf32"
    if ot == tl.bfloat16 and _interpreted():
        # Triton 3.9's interpreter multiplies bfloat16 dot operands as their raw uint16 bits:
        # there, round the operands to bfloat16 and multiply them exactly in float32.
        ct, prec = tl.float32, "ieee"
    grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
    _gemm_kernel[grid](
        x, xq, xd, data, w16, ws, b, y, m, n, k, x.stride(0), stride_q, rb, gpr, group,
        KIND=code, QACT=quant_acts, OT=ot, CT=ct, PREC=prec, BM=bm, BN=bn, BK=bk, HAS_BIAS=has_bias,
        num_warps=8 if bm >= 128 else 4, num_stages=3,
    )  # fmt: skip
    return y
