"""BERT encoder forward pass on a packed token matrix (no padding).

Tokens of all sequences in a batch are concatenated into one [T, H] matrix; every GEMM (fused QKV,
attention output, FFN up/down) runs once on the packed matrix through `ops.linear`, and attention
runs per sequence on its own length (cu_seqlens), so no FLOP is spent on padding.

Napkin math (all-MiniLM-L6-v2, H=384, FFN 1536, 6 layers): ~10.6M weight parameters, so ~21 MFLOP
per token in GEMMs; attention adds 4*L*H FLOP per token per layer (small for L <= 256).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops
from .._native import _C
from ..models.smoothquant import smooth_scales
from ..ops.linear import _run, int8_activation_bits
from ..quant import QuantizedWeight, quantize_weight

# erfc(z) ~= t * (a1 + t*(a2 + ... + t*a5)) * exp(-z^2), t = 1 / (1 + p*z): Abramowitz & Stegun 7.1.26,
# absolute error <= 1.5e-7, i.e. at float32 resolution for erf.
_AS_P = np.float32(0.3275911)
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erfc_abs(z: np.ndarray, t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """erfc(z) for z >= 0 into p (t is scratch; z is overwritten)."""
    np.multiply(z, _AS_P, out=t)
    t += 1
    np.reciprocal(t, out=t)
    np.multiply(t, np.float32(_AS_A[4]), out=p)
    for a in _AS_A[3::-1]:
        p += np.float32(a)
        p *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    p *= z
    return p


def erf(x: np.ndarray) -> np.ndarray:
    """Error function in float32 (|error| <= 1.5e-7 + rounding), vectorized numpy (no scipy)."""
    x = np.asarray(x, np.float32)
    z = np.abs(x)
    p = _erfc_abs(z, np.empty_like(z), np.empty_like(z))
    return np.where(x >= 0, 1 - p, p - 1).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU as BERT uses it, 0.5 * x * (1 + erf(x / sqrt(2))), through the native kernel
    (ops.gelu): in place on a C-contiguous float32 array (returned), else on a float32 copy."""
    if x.dtype != np.float32 or not x.flags.c_contiguous or not x.flags.writeable:
        x = np.array(x, np.float32, order="C")
    return ops.gelu(x, out=x)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
               residual: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """LayerNorm over the last axis of float32 [rows, cols] (of x + residual when given: BERT's
    add & norm in one pass), by the native kernel (csrc/cpu/norm_impl.h layer_norm_rows: mean and
    two-pass variance in float32 lanes, like torch). Into `out` when given, else a new array."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty_like(x) if out is None else out
    if residual is not None:
        residual = np.ascontiguousarray(residual, np.float32)
    _C.layer_norm(x, residual, np.ascontiguousarray(weight, np.float32), np.ascontiguousarray(bias, np.float32),
                  out, float(eps))
    return out


@dataclass
class _Layer:
    qkv: Any  # float32 [3H, H] or QuantizedWeight
    qkv_b: np.ndarray
    o: Any
    o_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    up: Any
    up_b: np.ndarray
    down: Any
    down_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray
    # SmoothQuant (int8 only): the GEMM input is multiplied by these (1/s per input channel) and the
    # weight's columns by s, moving activation outliers into the weights; None = no smoothing
    qkv_in: np.ndarray | None = None
    up_in: np.ndarray | None = None
    down_in: np.ndarray | None = None
    # int8 only: the same layer quantized without smoothing, for batches whose int8 GEMM keeps
    # activations at 16 bits (ops.linear: from GEMM_MIN_ROWS_QUANT tokens unless precision "high"
    # runs W8A8 at every size): there smoothing buys no accuracy and its activation rescaling costs
    # a pass over every GEMM input
    plain: _Layer | None = None


@dataclass
class BertWeights:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    emb_ln_w: np.ndarray
    emb_ln_b: np.ndarray
    layers: list[_Layer]
    num_heads: int
    eps: float

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], config: dict[str, Any], *, source: str,
                     quantization: str | None = None) -> BertWeights:
        """From HF BertModel tensor names (an optional 'bert.' prefix is accepted)."""
        def get(name: str) -> np.ndarray:
            for key in (name, "bert." + name):
                if key in tensors:
                    return np.ascontiguousarray(np.asarray(tensors[key], dtype=np.float32))
            raise ValueError(f"{source}: missing tensor {name!r} (is this a BERT model?)")

        def weight(w: np.ndarray) -> Any:
            return quantize_weight(w, "int8") if quantization == "int8" else w

        try:
            n_layers = int(config["num_hidden_layers"])
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source}: config.json lacks a valid {e} for a BERT model") from None
        if hidden % heads:
            raise ValueError(f"{source}: hidden_size {hidden} is not divisible by num_attention_heads {heads}")
        act = config.get("hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"{source}: hidden_act {act!r} is not supported (only exact 'gelu')")
        layers = []
        for i in range(n_layers):
            p = f"encoder.layer.{i}."
            qkv = np.concatenate([get(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")])
            qkv_b = np.concatenate([get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            layers.append(_Layer(
                weight(qkv), qkv_b,
                weight(get(p + "attention.output.dense.weight")), get(p + "attention.output.dense.bias"),
                get(p + "attention.output.LayerNorm.weight"), get(p + "attention.output.LayerNorm.bias"),
                weight(get(p + "intermediate.dense.weight")), get(p + "intermediate.dense.bias"),
                weight(get(p + "output.dense.weight")), get(p + "output.dense.bias"),
                get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias"),
            ))
        return cls(get("embeddings.word_embeddings.weight"), get("embeddings.position_embeddings.weight"),
                   get("embeddings.token_type_embeddings.weight"), get("embeddings.LayerNorm.weight"),
                   get("embeddings.LayerNorm.bias"), layers, heads, float(config.get("layer_norm_eps", 1e-12)))


class _Workspace(threading.local):
    """Per-thread activation buffers of the forward pass, reused across layers and calls: fresh
    [T, 1536] arrays per GEMM were ~5% of an int8 encode in page faults (stop 24)."""

    def __init__(self) -> None:
        self.flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        buf = self.flat.get(name)
        if buf is None or buf.size < n:
            buf = self.flat[name] = np.empty(max(n, 1), np.float32)
        return buf[:n].reshape(shape)


def _linear_into(x: np.ndarray, w: Any, b: np.ndarray, out: np.ndarray, precision: str, gelu: bool = False,
                 act_scale: np.ndarray | None = None) -> None:
    """out = (x * act_scale) @ W.T + b (GELU fused when asked): ops.linear's native call without
    its argument normalisation (x, b and out are the encoder's own C-contiguous float32 arrays;
    the kernel still checks every shape). act_scale (int8 weights: SmoothQuant's 1/s) is applied
    inside the activation quantizer, not as a pass over x."""
    qw = w if isinstance(w, QuantizedWeight) else QuantizedWeight("f32", (int(w.shape[0]), int(w.shape[1])), w)
    _run(x, qw, b, precision == "high", gelu, out, act_scale)


class BertEncoder:
    """Forward pass: token id lists -> last hidden states packed [T, H] plus cu_seqlens."""

    def __init__(self, weights: BertWeights, precision: str = "highest") -> None:
        self.w = weights
        self.precision = precision  # ops.linear's precision for every GEMM ("high": bf16x3 / W8A8 on AMX)
        self._ws = _Workspace()
        self.calibration: list[dict[str, np.ndarray]] | None = None  # per-layer input absmax when set
        self.hidden = int(weights.word.shape[1])
        self.max_positions = int(weights.position.shape[0])
        self.head_dim = self.hidden // weights.num_heads

    def forward(self, seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        lens = np.array([len(s) for s in seqs], dtype=np.int64)
        if lens.size == 0:
            return np.zeros((0, self.hidden), np.float32), np.zeros(1, np.int64)
        if lens.min() < 1 or lens.max() > self.max_positions:
            raise ValueError(f"seqs: sequence lengths must be in [1, {self.max_positions}]")
        cu = np.concatenate([[0], np.cumsum(lens)])
        ids = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(cu[-1]))
        if ids.min() < 0 or ids.max() >= w.word.shape[0]:
            raise ValueError(f"seqs: token ids must be in [0, {w.word.shape[0]})")
        pos = np.concatenate([np.arange(n) for n in lens.tolist()])
        x = w.word[ids] + w.position[pos] + w.token_type[0]
        x = layer_norm(x, w.emb_ln_w, w.emb_ln_b, w.eps, out=self._ws.get("x0", x.shape))
        for i, layer in enumerate(w.layers):
            # layer outputs alternate between two buffers; the last one is a new array (returned)
            last = i == len(w.layers) - 1
            x = self._layer(x, layer, cu, None if last else self._ws.get("x1" if i % 2 == 0 else "x0", x.shape))
        return x, cu

    def _attention(self, qkv: np.ndarray, cu: np.ndarray) -> np.ndarray:
        """Bidirectional softmax attention within each packed sequence, by the native kernel
        (csrc/cpu/encoder_attention_impl.h via _C.packed_attention: per sequence, its heads'
        Q/K/V gathered into dense scratch, then QK^T, exact softmax and PV there)."""
        t = qkv.shape[0]
        nh, d = self.w.num_heads, self.head_dim
        out = self._ws.get("ctx", (t, nh, d))
        qkv = np.ascontiguousarray(qkv, np.float32).reshape(t, 3, nh, d)
        _C.packed_attention(qkv, np.ascontiguousarray(cu, np.int64), out, float(1.0 / np.sqrt(d)))
        return out.reshape(t, nh * d)

    def _observe(self, layer: _Layer, name: str, x: np.ndarray) -> None:
        stats = self.calibration[next(i for i, L in enumerate(self.w.layers) if L is layer)]
        m = np.abs(x).max(axis=0)
        stats[name] = m if name not in stats else np.maximum(stats[name], m)

    def _layer(self, x: np.ndarray, L: _Layer, cu: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One encoder layer on x [T, H] into `out` (a new array when None); x is left intact."""
        eps, ws, t = self.w.eps, self._ws, x.shape[0]
        if L.plain is not None and int8_activation_bits(t, self.precision) == 16:
            L = L.plain  # W8A16 (16-bit activation codes): no smoothing needed
        calib = self.calibration is not None
        if calib:
            self._observe(L, "qkv", x)
        qkv = ws.get("qkv", (t, L.qkv_b.shape[0]))
        _linear_into(x, L.qkv, L.qkv_b, qkv, self.precision, act_scale=L.qkv_in)
        ctx = self._attention(qkv, cu)
        if calib:
            self._observe(L, "o", ctx)
        attn = ws.get("proj", (t, L.o_b.shape[0]))
        _linear_into(ctx, L.o, L.o_b, attn, self.precision)
        x1 = layer_norm(attn, L.ln1_w, L.ln1_b, eps, residual=x, out=ws.get("x_mid", x.shape))
        if calib:
            self._observe(L, "up", x1)
        # GELU fused into the GEMM: applied to each output tile / task block while still in cache
        hmid = ws.get("ffn", (t, L.up_b.shape[0]))
        _linear_into(x1, L.up, L.up_b, hmid, self.precision, gelu=True, act_scale=L.up_in)
        if calib:
            self._observe(L, "down", hmid)
        y = ws.get("proj", (t, L.down_b.shape[0]))  # the attention projection's buffer: attn is used up
        _linear_into(hmid, L.down, L.down_b, y, self.precision, act_scale=L.down_in)
        return layer_norm(y, L.ln2_w, L.ln2_b, eps, residual=x1, out=out)


def quantize_int8_smooth(enc: BertEncoder, calibration_seqs: list[list[int]], alpha: float = 0.5) -> None:
    """Calibrate activation ranges on `calibration_seqs` (float32 model), smooth and quantize every
    GEMM weight to int8 in place. The attention output GEMM's smoothing folds into V's rows. Each
    layer also keeps an unsmoothed int8 copy (`plain`) for batches that take the W8A16 GEMM."""
    enc.calibration = [{} for _ in enc.w.layers]
    try:
        enc.forward(calibration_seqs)
        stats = enc.calibration
    finally:
        enc.calibration = None
    h = enc.hidden
    for L, st in zip(enc.w.layers, stats, strict=True):
        gemms = ("qkv", "o", "up", "down")
        L.plain = dataclasses.replace(L, **{n: quantize_weight(getattr(L, n), "int8") for n in gemms})
        s_qkv = smooth_scales(st["qkv"], L.qkv, alpha)
        s_o = smooth_scales(st["o"], L.o, alpha)
        s_up = smooth_scales(st["up"], L.up, alpha)
        s_down = smooth_scales(st["down"], L.down, alpha)
        qkv = L.qkv * s_qkv[None, :]
        qkv[2 * h:] /= s_o[:, None]  # V rows produce the attention output's channels: scale them by 1/s
        L.qkv_b = L.qkv_b.copy()
        L.qkv_b[2 * h:] /= s_o
        L.qkv = quantize_weight(np.ascontiguousarray(qkv, np.float32), "int8")
        L.o = quantize_weight(np.ascontiguousarray(L.o * s_o[None, :], np.float32), "int8")
        L.up = quantize_weight(np.ascontiguousarray(L.up * s_up[None, :], np.float32), "int8")
        L.down = quantize_weight(np.ascontiguousarray(L.down * s_down[None, :], np.float32), "int8")
        L.qkv_in, L.up_in, L.down_in = 1.0 / s_qkv, 1.0 / s_up, 1.0 / s_down


__all__ = ["BertEncoder", "BertWeights", "QuantizedWeight", "erf", "gelu", "layer_norm", "quantize_int8_smooth",
           "smooth_scales"]
