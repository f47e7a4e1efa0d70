"""The native token sampler (`_C.sample_token`, csrc/cpu/sample.cpp) against its float64 spec,
`filtered_probs` + the inverse CDF, at every ISA this machine runs.

The native total mass comes from float32 exponentials (~1e-7 relative), so a draw whose u lies
within ~1e-7 of a cumulative boundary may land on the neighbouring token, and a top-p/min-p cut
that falls exactly on a cumulative may break the other way; `_agrees` allows exactly that (u,
top_p, min_p moved by at most 1e-6) and nothing else."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infercore
from infercore._native import _C
from infercore.engine.sampler import filtered_probs, make_generator, sample_row
from infercore.engine.sampling_params import SamplingParams

ISAS = infercore.available_isas()  # avx512 runs the AVX2 passes (csrc/cpu/sample_avx2.cpp)
BOUNDARY = 1e-6  # how close u must be to a spec boundary for a neighbouring token to count


@pytest.fixture(params=ISAS)
def isa(request):
    before = infercore.get_isa()
    infercore.set_isa(request.param)
    yield request.param
    infercore.set_isa(before)


def _native(logits: np.ndarray, p: SamplingParams, u: float) -> int:
    return _C.sample_token(logits, p.temperature, max(p.top_k, 0), p.top_p, p.min_p, u)


def _agrees_exactly_at(logits: np.ndarray, p: SamplingParams, u: float, got: int) -> bool:
    cand, prob = filtered_probs(logits.astype(np.float64), p)
    cum = np.cumsum(prob)
    want = int(np.searchsorted(cum, u, side="right"))
    pos = np.nonzero(cand == got)[0]
    if len(pos) == 0:
        return False  # a token these filters drop
    lo, hi = sorted((min(want, len(cand) - 1), int(pos[0])))
    # same token, or every boundary between the two tokens lies within BOUNDARY of u
    return lo == hi or (abs(cum[lo] - u) < BOUNDARY and abs(cum[hi - 1] - u) < BOUNDARY)


def _agrees(logits: np.ndarray, p: SamplingParams, u: float, got: int) -> bool:
    """The spec's token for u, or for u, top_p and min_p each moved by at most BOUNDARY: a cut
    that lands exactly on a cumulative (top_p 0.5 over two tied tokens) breaks by 1-ulp
    rounding, which depends on the order of a sum."""
    if _agrees_exactly_at(logits, p, u, got):
        return True
    for dp in (-BOUNDARY, BOUNDARY):
        for field in ("top_p", "min_p"):
            value = getattr(p, field) + dp
            if (field == "top_p" and 0.0 < value <= 1.0 and p.top_p < 1.0) or (field == "min_p" and 0.0 < value <= 1.0
                                                                                and p.min_p > 0.0):
                if _agrees_exactly_at(logits, dataclasses.replace(p, **{field: value}), u, got):
                    return True
    return False


PARAMS = [
    SamplingParams(temperature=1.0),
    SamplingParams(temperature=0.7, top_p=0.9),
    SamplingParams(temperature=1.3, top_k=50),
    SamplingParams(temperature=1.0, min_p=0.05),
    SamplingParams(temperature=0.9, top_k=3000, top_p=0.95),
    SamplingParams(temperature=0.8, top_p=0.999),
    SamplingParams(temperature=1.0, min_p=1e-9),
    SamplingParams(temperature=2.0, top_k=7, top_p=0.5, min_p=0.2),
]


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"t{p.temperature}-k{p.top_k}-p{p.top_p}-m{p.min_p}")
def test_matches_the_float64_spec(isa, params):
    rng = np.random.default_rng(5)
    exact = 0
    draws = 0
    for trial in range(36):
        vocab = [49152, 1, 7, 33, 1000, 5000][trial % 6]
        scale = [0.01, 0.5, 2.0, 6.0][trial % 4]  # flat (every band) to peaked (the first band)
        raw = (rng.standard_normal(vocab) * scale).astype(np.float32)
        if vocab > 10:
            raw[rng.integers(0, vocab, 5)] = raw.max()  # ties at the top
        if trial % 5 == 0 and vocab > 3:
            raw[rng.integers(0, vocab, vocab // 3)] = -np.inf  # masked-out tokens
            raw[vocab // 2] = 0.5
        for u in [*rng.random(6), 0.0, np.nextafter(1.0, 0.0)]:
            got = _native(raw, params, float(u))
            assert _agrees(raw, params, float(u), got), (vocab, scale, trial, u, got)
            if 0.0 < u < 0.999:  # (u near 1 lands in the deep tail, where boundaries are ~1e-8 apart)
                cand, prob = filtered_probs(raw.astype(np.float64), params)
                want = int(cand[min(int(np.searchsorted(np.cumsum(prob), u, side="right")), len(cand) - 1)])
                exact += got == want
                draws += 1
    assert exact >= draws - 1  # near-boundary neighbours are rare, not the rule


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    logits=st.lists(st.floats(-30, 30, width=32) | st.just(float("-inf")), min_size=1, max_size=80),
    temperature=st.floats(0.05, 4.0),
    top_k=st.integers(0, 90),
    top_p=st.floats(0.01, 1.0),
    min_p=st.sampled_from([0.0, 0.0, 1e-6, 0.1, 0.5, 1.0]),
    u=st.floats(0.0, 1.0, exclude_max=True),
)
def test_hypothesis_small_vocabularies(isa, logits, temperature, top_k, top_p, min_p, u):
    raw = np.asarray(logits, np.float32)
    if not np.isfinite(raw).any():
        raw[0] = 0.0
    p = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    assert _agrees(raw, p, u, _native(raw, p, u))


def test_top_k_ties_keep_the_lower_ids(isa):
    raw = np.zeros(100, np.float32)
    raw[[90, 10, 50, 30]] = 5.0  # four tied best; top_k 2 keeps ids 10 and 30
    p = SamplingParams(temperature=1.0, top_k=2)
    got = {_native(raw, p, u) for u in np.linspace(0, 0.999, 50)}
    assert got == {10, 30}
    assert _native(raw, SamplingParams(temperature=1.0, top_k=1), 0.99) == 10


def test_edges_of_u_and_temperature(isa):
    raw = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    order = np.lexsort((np.arange(4096), -raw))
    p = SamplingParams(temperature=1.0, top_p=0.9)
    cand, _ = filtered_probs(raw.astype(np.float64), p)
    assert _native(raw, p, 0.0) == order[0]
    assert _native(raw, p, float(np.nextafter(1.0, 0.0))) == cand[-1]  # the last kept token
    assert _native(raw, SamplingParams(temperature=1e-4), 0.7) == order[0]  # cold: the argmax
    flat = np.zeros(1000, np.float32)  # uniform: the u-quantile of the id order
    assert _native(flat, SamplingParams(temperature=1.0), 0.5004) == 500
    assert _native(flat, SamplingParams(temperature=1.0, min_p=1.0), 0.9) == 900  # all tie with the max


def test_masked_tokens_are_never_drawn(isa):
    rng = np.random.default_rng(3)
    raw = np.full(49152, -np.inf, np.float32)
    live = rng.choice(49152, 40, replace=False)
    raw[live] = rng.standard_normal(40).astype(np.float32) * 3
    for p in PARAMS:
        got = {_native(raw, p, float(u)) for u in rng.random(200)}
        assert got <= set(live.tolist())
    one = np.full(33, -np.inf, np.float32)
    one[17] = -1e30
    assert _native(one, SamplingParams(temperature=1.0), 0.99) == 17
    # the coldest and hottest temperatures the native draw takes
    for t in (3e-39, 1e-30, 1e30, 1e300):
        got = {_C.sample_token(raw, t, 0, 1.0, 0.0, float(u)) for u in rng.random(50)}
        assert got <= set(live.tolist())


def test_draws_follow_the_distribution():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    raw = np.log(probs).astype(np.float32)
    g = make_generator(7)
    for p, want in [
        (SamplingParams(temperature=1.0), probs),
        (SamplingParams(temperature=1.0, top_p=0.7), np.array([0.625, 0.375, 0, 0])),
        (SamplingParams(temperature=1.0, min_p=0.25), np.array([0.5, 0.3, 0.15, 0]) / 0.95),  # p >= p0 / 4
    ]:
        draws = np.bincount([sample_row(raw, p, g).token_id for _ in range(6000)], minlength=4)
        np.testing.assert_allclose(draws / 6000, want, atol=0.025)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ({"logits": np.array([0.0, np.nan], np.float32)}, ValueError, "NaN"),
        ({"logits": np.array([0.0, np.inf], np.float32)}, ValueError, r"\+inf"),
        ({"logits": np.full(9, -np.inf, np.float32)}, ValueError, "every token is -inf"),
        ({"logits": np.zeros(0, np.float32)}, ValueError, "empty"),
        ({"logits": np.zeros(4, np.float64)}, TypeError, "logits"),
        ({"logits": np.zeros(4, np.int32)}, TypeError, "float32"),
        ({"logits": np.zeros((2, 4), np.float32)}, ValueError, "dimensions"),
        ({"logits": np.zeros(8, np.float32)[::2]}, ValueError, "contiguous"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": float("nan")}, ValueError, "temperature"),
        ({"temperature": 2e-39}, ValueError, "temperature"),  # 1 / t past float32: masked tokens came out
        ({"temperature": 1e-311}, ValueError, "temperature"),
        ({"top_k": -1}, ValueError, "top_k"),
        ({"top_p": 0.0}, ValueError, "top_p"),
        ({"top_p": 1.5}, ValueError, "top_p"),
        ({"min_p": -0.1}, ValueError, "min_p"),
        ({"u": 1.0}, ValueError, "u"),
        ({"u": -0.5}, ValueError, "u"),
    ],
)
def test_bad_inputs(args, exc, match):
    kw = {"logits": np.zeros(4, np.float32), "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "u": 0.5}
    kw.update(args)
    with pytest.raises(exc, match=match):
        _C.sample_token(**kw)


def test_sample_row_reports_nan_and_needs_a_generator():
    raw = np.zeros(16, np.float32)
    raw[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_row(raw, SamplingParams(temperature=1.0), make_generator(0))
    with pytest.raises(ValueError, match="rng"):
        sample_row(np.zeros(16, np.float32), SamplingParams(temperature=1.0), None)
    strided = np.zeros((4, 16), np.float32)[:, 3]  # a non-contiguous row is copied, not refused
    assert 0 <= sample_row(strided, SamplingParams(temperature=1.0), make_generator(0)).token_id < 4


@pytest.mark.parametrize("n", [0, 1, 5, 20])
def test_logprobs_match_float64(isa, n):
    rng = np.random.default_rng(n)
    for vocab, scale in [(49152, 3.6), (33, 0.01), (1000, 8.0), (20, 1.0)]:
        raw = (rng.standard_normal(vocab) * scale).astype(np.float32)
        raw[rng.integers(0, vocab, 6)] = raw.max()  # ties at the top
        raw[rng.integers(0, vocab, 3)] = -np.inf
        nn = min(n, vocab)
        m, log_total, top = _C.sample_logprobs(raw, nn)
        x = raw.astype(np.float64)
        want_top = np.lexsort((np.arange(vocab), -x))[:nn]  # (logit desc, id asc)
        np.testing.assert_array_equal(top, want_top)
        ref = x.max() + np.log(np.exp(x - x.max()).sum())
        assert m == x.max() and abs((m + log_total) - ref) < 1e-6 * max(1.0, abs(ref))
        r = sample_row(raw, SamplingParams(temperature=0.0, logprobs=nn), None)
        assert list(r.top_logprobs or {}) == ([] if nn == 0 else want_top.tolist())
        assert abs(r.logprob - (x[r.token_id] - ref)) < 1e-6


def test_logprobs_ties_at_the_cut_keep_the_lower_ids():
    raw = np.zeros(5000, np.float32)
    raw[[4000, 17, 2500, 99]] = 3.0  # four tied best, two asked for
    _, _, top = _C.sample_logprobs(raw, 2)
    assert top.tolist() == [17, 99]
    _, _, top = _C.sample_logprobs(raw, 6)
    assert top.tolist() == [17, 99, 2500, 4000, 0, 1]


def test_logprobs_inf_rows_and_bad_inputs():
    m, log_total, top = _C.sample_logprobs(np.full(8, -np.inf, np.float32), 3)
    assert m == -np.inf and np.isnan(log_total) and len(top) == 0  # the caller's numpy conventions
    inf_row = np.zeros(8, np.float32)
    inf_row[2] = np.inf
    r = sample_row(inf_row, SamplingParams(temperature=0.0, logprobs=2), None)
    assert r.token_id == 2 and next(iter(r.top_logprobs)) == 2
    for args, exc in [((np.zeros(4, np.float32), 5), ValueError), ((np.zeros(4, np.float32), -1), ValueError),
                      ((np.zeros(4, np.float64), 1), TypeError), ((np.array([0, np.nan], np.float32), 1), ValueError),
                      ((np.zeros(0, np.float32), 0), ValueError)]:
        with pytest.raises(exc):
            _C.sample_logprobs(*args)
