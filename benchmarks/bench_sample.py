"""Token sampling for one decode step of 16 sequences (16 rows of SmolLM2's 49152 logits):
infercore's engine sampler (numpy penalties/masks + the native draw, csrc/cpu/sample.cpp) against
torch doing what vLLM's CPU sampler does (sort each row, softmax, cumulative top-p/top-k mask,
then the draw; here the same inverse-CDF draw so the token is comparable) and against the
float64 numpy spec (`filtered_probs`: a stable sort of the vocabulary per row).

Bytes per call = the logits read once (16 x 49152 x 4 = 3 MiB); the native draw reads each row
two or three times from cache and evaluates one float32 exponential per token (napkin math in
csrc/cpu/sample_impl.h), so it is bound by the exponential pass, ~25-60 us per row on one core.
The logits are Gaussian with the spread of SmolLM2's (std ~3.6 over the vocabulary); "flat"
rows (std 0.5) make the top-p set thousands of tokens wide, the native path's worst case.
"""

from __future__ import annotations

import numpy as np

from infercore.bench import Case
from infercore.engine.sampler import filtered_probs, make_generator, sample_row
from infercore.engine.sampling_params import SamplingParams

from ._peers import torch_or_none

ROWS, VOCAB = 16, 49152
PARAMS = {
    "t0.8 top_p0.95": SamplingParams(temperature=0.8, top_p=0.95),
    "t1.0": SamplingParams(temperature=1.0),
    "t0.7 top_k50": SamplingParams(temperature=0.7, top_k=50),
}


def _spec(rows: np.ndarray, p: SamplingParams, us: np.ndarray) -> list[int]:
    out = []
    for r, u in zip(rows, us, strict=True):
        cand, prob = filtered_probs(r.astype(np.float64), p)
        out.append(int(cand[min(int(np.searchsorted(np.cumsum(prob), u, side="right")), len(cand) - 1)]))
    return out


def _torch_sampler(torch, rows, p: SamplingParams, us):
    """vLLM-style: one descending sort per row, softmax, top-k / top-p masks on the sorted
    probabilities, renormalise, and the inverse-CDF draw for the same u."""
    def run() -> list[int]:
        logits = rows / p.temperature
        vals, idx = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = torch.softmax(vals, dim=-1)
        keep = torch.ones_like(probs, dtype=torch.bool)
        if p.top_k > 0:
            keep[:, p.top_k:] = False
        if p.top_p < 1.0:
            cum = torch.cumsum(probs, dim=-1)
            keep &= (cum - probs) < p.top_p  # a token stays while the mass before it is below top_p
        probs = probs * keep
        cum = torch.cumsum(probs, dim=-1)
        pos = torch.searchsorted(cum, us[:, None] * cum[:, -1:], right=True).clamp_(max=probs.shape[1] - 1)
        return torch.gather(idx, 1, pos)[:, 0].tolist()

    return run


def cases(quick: bool) -> list[Case]:
    rng = np.random.default_rng(0)
    torch = torch_or_none()
    out: list[Case] = []
    spreads = {"smollm2-like": 3.6} if quick else {"smollm2-like": 3.6, "flat": 0.5}
    for spread_name, std in spreads.items():
        rows = (rng.standard_normal((ROWS, VOCAB)) * std).astype(np.float32)
        us = rng.random(ROWS)
        for pname, p in PARAMS.items():
            shape = f"{ROWS}x{VOCAB} {spread_name} {pname}"
            kw = {"bytes": float(rows.nbytes), "items": float(ROWS), "unit": "row"}
            gens = [make_generator(i) for i in range(ROWS)]
            out.append(Case("sample", "sample", shape, "float32", "infercore",
                            lambda rows=rows, p=p, gens=gens: [sample_row(r, p, g).token_id
                                                               for r, g in zip(rows, gens, strict=True)], **kw))
            out.append(Case("sample", "sample", shape, "float32", "numpy-float64-spec",
                            lambda rows=rows, p=p, us=us: _spec(rows, p, us), min_repeats=2, **kw))
            if torch is not None:
                out.append(Case("sample", "sample", shape, "float32", "torch-sort (vLLM-style)",
                                _torch_sampler(torch, torch.from_numpy(rows), p, torch.from_numpy(us).float()),
                                **kw))
    return out


def test_sample_smollm2_like_top_p(benchmark):  # pytest-benchmark entry: `pytest benchmarks --benchmark-only`
    c = next(c for c in cases(True) if c.impl == "infercore" and "top_p" in c.shape)
    benchmark(c.fn)
