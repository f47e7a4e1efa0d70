"""Turns a batch of next-token logits into tokens, one request's rules per row.

Per-request randomness comes from that request's own generator, so a seeded request samples
the same tokens whatever else shares its batch. Penalties and masks are applied here in numpy;
the draw itself is native (`_C.sample_token`: ~20-90 us per SmolLM2 row of 49152 logits, ~1.5 ms
for a nearly flat row, against 0.3-6 ms for the numpy version it replaced), and `filtered_probs`
below is its float64 spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._native import _C
from .sampling_params import SamplingParams


@dataclass
class SampleResult:
    token_id: int
    logprob: float | None = None  # of the sampled token under the raw model distribution
    top_logprobs: dict[int, float] | None = None


class PenaltyHistory:
    """What the penalties read from a sequence's growing token list, kept up to date in O(new
    tokens) per step: the distinct ids of prompt + output (repetition penalty) and the distinct
    output ids with their counts (presence / frequency), as numpy arrays grown in place. Turning a
    2000-token history into arrays and `np.unique` every step cost ~0.15-0.4 ms per row.

    `update(token_ids)` absorbs what was appended since the last call; a list shorter than what was
    absorbed (not a growing history) starts over. A forked sequence gets its own history."""

    def __init__(self, prompt_len: int) -> None:
        self.prompt_len = prompt_len
        self._reset()

    def _reset(self) -> None:
        self._absorbed = 0
        self._seen_set: set[int] = set()
        self._seen = np.empty(64, np.int64)
        self._out_index: dict[int, int] = {}  # output id -> its slot in _out_ids / _out_counts
        self._out_ids = np.empty(16, np.int64)
        self._out_counts = np.zeros(16, np.int64)

    @staticmethod
    def _room(a: np.ndarray, n: int) -> np.ndarray:
        if n < len(a):
            return a
        grown = np.zeros(2 * len(a), a.dtype)
        grown[: len(a)] = a
        return grown

    def update(self, token_ids: Sequence[int]) -> PenaltyHistory:
        if len(token_ids) < self._absorbed:
            self._reset()
        for i in range(self._absorbed, len(token_ids)):
            t = int(token_ids[i])
            if t not in self._seen_set:
                self._seen = self._room(self._seen, len(self._seen_set))
                self._seen[len(self._seen_set)] = t
                self._seen_set.add(t)
            if i >= self.prompt_len:
                j = self._out_index.get(t)
                if j is None:
                    j = len(self._out_index)
                    self._out_index[t] = j
                    self._out_ids = self._room(self._out_ids, j)
                    self._out_counts = self._room(self._out_counts, j)
                    self._out_ids[j] = t
                    self._out_counts[j] = 0
                self._out_counts[j] += 1
        self._absorbed = len(token_ids)
        return self

    @property
    def seen(self) -> np.ndarray:  # distinct ids of prompt + output, in first-seen order
        return self._seen[: len(self._seen_set)]

    @property
    def output_counts(self) -> tuple[np.ndarray, np.ndarray]:  # distinct output ids, their counts
        n = len(self._out_index)
        return self._out_ids[:n], self._out_counts[:n]


_F32_MAX = float(np.finfo(np.float32).max)


def apply_penalties(
    logits: np.ndarray, params: SamplingParams, prompt_ids: Sequence[int], output_ids: Sequence[int],
    history: PenaltyHistory | None = None,
) -> np.ndarray:
    """Repetition (prompt + output, transformers' rule), presence and frequency (output, OpenAI's).
    The history comes from `history` when given (the engine's incremental one), else from the
    two id lists."""
    if params.repetition_penalty != 1.0:
        if history is not None:
            seen = history.seen
        elif len(prompt_ids) or len(output_ids):
            seen = np.unique(np.concatenate([np.asarray(prompt_ids, np.int64), np.asarray(output_ids, np.int64)]))
        else:
            seen = np.empty(0, np.int64)
        # In float64, saturating at float32's largest magnitude: a penalty far from 1 (1e-311,
        # 1e39) overflowed float32 to +inf (refused by the draw) or made 0 * inf = NaN. -inf
        # logits (masked) stay -inf.
        vals = logits[seen].astype(np.float64)
        rp = params.repetition_penalty
        with np.errstate(over="ignore"):
            pen = np.where(vals > 0, vals / rp, vals * rp)
        logits[seen] = np.where(np.isneginf(vals), vals, np.clip(pen, -_F32_MAX, _F32_MAX))
    if params.presence_penalty or params.frequency_penalty:
        if history is not None:
            ids, counts = history.output_counts
        else:
            ids, counts = np.unique(np.asarray(output_ids, np.int64), return_counts=True)
        logits[ids] -= params.presence_penalty + params.frequency_penalty * counts
    return logits


def filtered_probs(logits: np.ndarray, params: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
    """(candidate token ids sorted by logit descending, their probabilities) after temperature,
    top-k, top-p and min-p."""
    v = logits.shape[0]
    k = params.top_k if params.top_k > 0 else v
    k = min(k, v)
    # every token by logit descending, ties by lower id (stable order for reproducibility); top-k
    # is that order's first k, so a tie at the k-th logit keeps the lower ids
    cand = np.lexsort((np.arange(v), -logits))[:k]
    z = logits[cand].astype(np.float64) / params.temperature
    z -= z[0]
    p = np.exp(z)
    p /= p.sum()
    keep = len(p)
    if params.top_p < 1.0:
        cum = np.cumsum(p)
        keep = min(keep, int(np.searchsorted(cum, params.top_p, side="left")) + 1)
    if params.min_p > 0.0:
        keep = min(keep, max(1, int(np.count_nonzero(p >= params.min_p * p[0]))))
    cand, p = cand[:keep], p[:keep]
    return cand, p / p.sum()


def sample_row(
    logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator | None,
    prompt_ids: Sequence[int] = (),
    output_ids: Sequence[int] = (),
    suppress: Sequence[int] = (),
    allowed: np.ndarray | None = None,
    history: PenaltyHistory | None = None,
) -> SampleResult:
    """One request's next token. `suppress` (e.g. EOS before min_tokens) can never be chosen,
    unless `allowed` (bool [vocab], a grammar's mask; must have a True) leaves nothing else.
    The penalties read `history` when given (up to date with prompt + output), else the lists."""
    raw = _logits_row(logits)
    if not isinstance(params, SamplingParams):
        raise TypeError(f"params: expected a SamplingParams, got {type(params).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy Generator or None, got {type(rng).__name__}")
    if allowed is not None:
        if not isinstance(allowed, np.ndarray) or allowed.dtype != np.bool_:
            raise TypeError(f"allowed: expected a bool numpy array, got {_describe(allowed)}")
    if len(suppress):
        sup = _token_ids(suppress, raw.shape[0], "suppress")
    plain = allowed is None and not len(suppress) and not params.penalized
    if params.greedy and plain:
        # Plain greedy: float32 -> float64 is exact and order-preserving, so the argmax (first
        # maximum) is the same without the copy; np.argmax stops at the first NaN.
        token = int(np.argmax(raw))
        if raw[token] != raw[token]:
            raise ValueError("logits: the model produced NaN")
        return _with_logprobs(SampleResult(token), raw, params)
    # Penalties and masks are applied to a float32 copy (as transformers' logits processors do on
    # float32 logits); the native draw forms the head's probabilities and the CDF in float64 from
    # exact widenings of those float32 values.
    work32 = raw if plain else apply_penalties(raw.copy(), params, prompt_ids, output_ids, history)
    if allowed is not None:
        if allowed.shape != work32.shape or not allowed.any():
            raise ValueError("allowed: expected a bool mask over the vocabulary with at least one True")
        work32[~allowed] = -np.inf
    if len(suppress):
        kept = work32[sup].copy()
        work32[sup] = -np.inf
        if allowed is not None and not np.isfinite(work32).any():
            work32[sup] = kept  # the grammar allows only the suppressed tokens: structure wins
    if params.greedy:
        if np.isnan(work32).any():
            raise ValueError("logits: the model produced NaN")
        token = int(np.argmax(work32))  # first (lowest) id among equal maxima
    else:
        if rng is None:
            raise ValueError("rng: sampling with temperature > 0 needs a generator")
        # The native sampler (csrc/cpu/sample.cpp) picks the token filtered_probs + the inverse CDF
        # picks for this u, sorting only the head of the vocabulary; NaN/+inf logits raise there.
        # top_k past the vocabulary keeps every token (as 0 does); clamped, it also fits the native
        # int64 (a request with top_k 10^30 raised inside the engine loop and stopped the server)
        top_k = min(max(params.top_k, 0), work32.shape[-1])
        token = int(_C.sample_token(np.ascontiguousarray(work32), params.temperature, top_k, params.top_p,
                                    params.min_p, rng.random()))
    return _with_logprobs(SampleResult(token), raw, params)


def _describe(x: object) -> str:
    dt = getattr(x, "dtype", None)
    return f"{type(x).__name__} of dtype {dt}" if dt is not None else type(x).__name__


def _logits_row(logits: object) -> np.ndarray:
    """logits as float32 [vocab] (a view when they are float32 already), or a typed error."""
    try:
        raw = np.asarray(logits, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"logits: expected a float array [vocab], got {_describe(logits)}") from None
    if raw.ndim != 1 or raw.shape[0] == 0:
        raise ValueError(f"logits: expected a non-empty 1-d array [vocab], got shape {raw.shape}")
    return raw


def _token_ids(ids: object, vocab: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(ids)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a sequence of token ids") from None
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"{name}: expected a 1-d sequence of int token ids, got {_describe(arr)}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise ValueError(f"{name}: token ids must be in [0, {vocab})")
    return arr.astype(np.int64, copy=False)


def _with_logprobs(result: SampleResult, raw: np.ndarray, params: SamplingParams) -> SampleResult:
    """The sampled token's log-probability (and the top `params.logprobs`) under the raw logits.

    Only the requested entries are formed: lp[t] = (x[t] - m) - log(sum exp(x - m)), the sum of
    float32 exponentials taken in float64 (`_C.sample_logprobs`, one native pass, ~1e-7 from the
    all-float64 value), and the top ids in (logit desc, id asc) order from the native band
    select. A row whose max is +-inf keeps numpy's conventions (m taken as 0, a full stable sort)."""
    if params.logprobs is None:
        return result
    m, log_total, top = _C.sample_logprobs(np.ascontiguousarray(raw), params.logprobs)
    if not np.isfinite(m):
        m = 0.0
        log_total = float(np.log(np.exp(raw - np.float32(m)).sum(dtype=np.float64)))
        top = np.lexsort((np.arange(raw.shape[0]), -raw))[: params.logprobs]

    def lp(t: int) -> float:
        return (float(raw[t]) - m) - log_total

    result.logprob = lp(result.token_id)
    if params.logprobs > 0:
        result.top_logprobs = {int(t): lp(int(t)) for t in top}
    return result


def make_generator(seed: int | None) -> np.random.Generator:
    """A request's own generator: seeded -> reproducible; else fresh OS entropy."""
    return np.random.default_rng(seed)
