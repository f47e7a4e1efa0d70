"""gelu (exact erf form and tanh) against torch.nn.functional.gelu and numpy, same threads, same run.

Bytes per call = read x + write y (8 bytes per float32 element, 4 per bfloat16). The harness's
read probe is the bound; the kernel does ~40 vector instructions per vector, so on two cores
float32 sits near the compute/bandwidth crossover and 16-bit types are compute bound (see
csrc/cpu/gelu_impl.h). 4000x1536 is the MiniLM embedder's FFN activation for 64 texts of ~62
tokens (in place there, so it stays in L3); 4096x4096 (64 MB) does not fit in the caches.
The numpy peer is the embedder's previous implementation: Abramowitz-Stegun 7.1.26 erfc in
cache-sized blocks (64k elements), written to a preallocated output.
"""

from __future__ import annotations

import numpy as np

import infercore
from infercore.bench import Case

from ._peers import torch_or_none

_AS_P = np.float32(0.3275911 / np.sqrt(2.0))  # A&S p with u = x / sqrt 2 folded in
_AS_A = tuple(np.float32(0.5 * a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_BLOCK = 1 << 16
_TANH_C = np.float32(np.sqrt(2.0 / np.pi))


def _numpy_gelu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """max(x, 0) - 0.5 |x| erfc(|x| / sqrt 2), numpy in 64k-element blocks (temporaries in L2)."""
    flat, oflat = x.reshape(-1), out.reshape(-1)
    t, z, p = (np.empty(min(_BLOCK, flat.size), np.float32) for _ in range(3))
    for s in range(0, flat.size, _BLOCK):
        v, o = flat[s:s + _BLOCK], oflat[s:s + _BLOCK]
        m = v.size
        zz, tt, pp = z[:m], t[:m], p[:m]
        np.abs(v, out=zz)
        np.multiply(zz, _AS_P, out=tt)
        tt += 1
        np.reciprocal(tt, out=tt)
        np.multiply(tt, _AS_A[4], out=pp)
        for a in _AS_A[3::-1]:
            pp += a
            pp *= tt
        np.multiply(v, v, out=tt)
        tt *= np.float32(-0.5)
        np.exp(tt, out=tt)
        pp *= tt
        pp *= zz
        np.maximum(v, 0, out=o)
        o -= pp
    return out


def _numpy_gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(_TANH_C * (x + np.float32(0.044715) * x * x * x)))


def _shape_cases(rows: int, cols: int, rng: np.random.Generator) -> list[Case]:
    torch = torch_or_none()
    x = (rng.standard_normal((rows, cols), dtype=np.float32) * 2).astype(np.float32)
    shape = f"{rows}x{cols}"
    nbytes = 2.0 * x.nbytes
    out = np.empty_like(x)
    np_out = np.empty_like(x)
    gelu = infercore.ops.gelu
    cases = [
        Case("gelu", "gelu", shape, "float32", "infercore", lambda: gelu(x), bytes=nbytes),
        Case("gelu", "gelu", shape, "float32", "numpy", lambda: _numpy_gelu(x, np.empty_like(x)), bytes=nbytes),
        Case("gelu", "gelu(out=)", shape, "float32", "infercore", lambda: gelu(x, out=out), bytes=nbytes),
        Case("gelu", "gelu(out=)", shape, "float32", "numpy", lambda: _numpy_gelu(x, np_out), bytes=nbytes),
        Case("gelu", "gelu_tanh", shape, "float32", "infercore", lambda: gelu(x, approximate="tanh"), bytes=nbytes),
        Case("gelu", "gelu_tanh", shape, "float32", "numpy", lambda: _numpy_gelu_tanh(x), bytes=nbytes),
    ]
    if torch is not None:
        import torch.nn.functional as F

        tx, tout = torch.from_numpy(x), torch.from_numpy(np.empty_like(x))
        tb = tx.to(torch.bfloat16)
        cases += [
            Case("gelu", "gelu", shape, "float32", "torch", lambda: F.gelu(tx), bytes=nbytes),
            Case("gelu", "gelu(out=)", shape, "float32", "torch", lambda: torch._C._nn.gelu(tx, out=tout),
                 bytes=nbytes),
            Case("gelu", "gelu_tanh", shape, "float32", "torch", lambda: F.gelu(tx, approximate="tanh"), bytes=nbytes),
            Case("gelu", "gelu", shape, "bfloat16", "infercore", lambda: gelu(tb), bytes=nbytes / 2),
            Case("gelu", "gelu", shape, "bfloat16", "torch", lambda: F.gelu(tb), bytes=nbytes / 2),
        ]
    return cases


def cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    shapes = [(4000, 1536), (4096, 4096), (64, 1536)]
    if not quick:
        shapes.append((8192, 8192))
    out: list[Case] = []
    for rows, cols in shapes:
        out += _shape_cases(rows, cols, rng)
    return out


def test_gelu_embedder_shape(benchmark):  # pytest-benchmark entry: `pytest benchmarks --benchmark-only`
    c = next(c for c in cases(True) if c.op == "gelu(out=)" and c.impl == "infercore")
    benchmark(c.fn)
