"""rms_norm / l2_normalize against numpy and torch CPU, same threads, same run.

Bytes per call = read x + write y (the weight is negligible). The bound is the streaming
bandwidth the harness measures; non-temporal stores let the kernel approach it for outputs
that do not fit in the caches.
"""

from __future__ import annotations

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none

EPS = 1e-6


def _rms_numpy(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def _l2_numpy(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _shape_cases(rows: int, cols: int, rng: np.random.Generator) -> list[Case]:
    torch = torch_or_none()
    x = rng.standard_normal((rows, cols), dtype=np.float32)
    w = rng.standard_normal(cols, dtype=np.float32)
    shape = f"{rows}x{cols}"
    nbytes = 2.0 * x.nbytes
    out = np.empty_like(x)
    ms_buf = np.empty((rows, 1), dtype=np.float32)
    np_out = np.empty_like(x)

    def numpy_rms_out() -> None:  # numpy's best with preallocated buffers
        np.einsum("ij,ij->i", x, x, out=ms_buf[:, 0])
        np.multiply(ms_buf, 1.0 / cols, out=ms_buf)
        np.add(ms_buf, EPS, out=ms_buf)
        np.sqrt(ms_buf, out=ms_buf)
        np.divide(x, ms_buf, out=np_out)
        np.multiply(np_out, w, out=np_out)

    cases = [
        Case("norm", "rms_norm", shape, "float32", "infercore",
             lambda: infercore.ops.rms_norm(x, w, EPS), bytes=nbytes),
        Case("norm", "rms_norm", shape, "float32", "numpy", lambda: _rms_numpy(x, w), bytes=nbytes),
        Case("norm", "rms_norm(out=)", shape, "float32", "infercore",
             lambda: infercore.ops.rms_norm(x, w, EPS, out=out), bytes=nbytes),
        Case("norm", "rms_norm(out=)", shape, "float32", "numpy", numpy_rms_out, bytes=nbytes),
        Case("norm", "l2_normalize", shape, "float32", "infercore",
             lambda: infercore.ops.l2_normalize(x), bytes=nbytes),
        Case("norm", "l2_normalize", shape, "float32", "numpy", lambda: _l2_numpy(x), bytes=nbytes),
    ]
    if torch is not None:
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        tb, twb = tx.to(torch.bfloat16), tw.to(torch.bfloat16)
        import torch.nn.functional as F

        cases += [
            Case("norm", "rms_norm", shape, "float32", "torch",
                 lambda: F.rms_norm(tx, (cols,), tw, EPS), bytes=nbytes),
            Case("norm", "l2_normalize", shape, "float32", "torch", lambda: F.normalize(tx, dim=-1), bytes=nbytes),
            Case("norm", "rms_norm", shape, "bfloat16", "infercore",
                 lambda: infercore.ops.rms_norm(tb, tw, EPS), bytes=nbytes / 2),
            Case("norm", "rms_norm", shape, "bfloat16", "torch",
                 lambda: F.rms_norm(tb, (cols,), twb, EPS), bytes=nbytes / 2),
        ]
    return cases


def cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    shapes = [(4096, 4096), (1, 576), (64, 576)]
    if not quick:
        shapes.append((8192, 8192))
    out: list[Case] = []
    for rows, cols in shapes:
        out += _shape_cases(rows, cols, rng)
    return out


def test_rms_norm_4096(benchmark):  # pytest-benchmark entry: `pytest benchmarks --benchmark-only`
    c = next(c for c in cases(True) if c.op == "rms_norm" and c.impl == "infercore" and c.dtype == "float32")
    benchmark(c.fn)
