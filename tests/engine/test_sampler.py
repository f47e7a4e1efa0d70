"""SamplingParams validation and the sampler's rules (greedy, filters, penalties, seeds, logprobs)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from infercore.engine.sampler import apply_penalties, filtered_probs, make_generator, sample_row
from infercore.engine.sampling_params import SamplingParams


def test_greedy_takes_lowest_id_on_ties():
    logits = np.array([0.0, 3.0, 1.0, 3.0], np.float32)
    assert sample_row(logits, SamplingParams(), None).token_id == 1


def test_seeded_sampling_is_reproducible_and_seed_sensitive():
    logits = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    p = SamplingParams(temperature=1.0, seed=42)
    a = [sample_row(logits, p, g).token_id for g in [make_generator(42)] for _ in range(20)]
    b = [sample_row(logits, p, g).token_id for g in [make_generator(42)] for _ in range(20)]
    c = [sample_row(logits, p, g).token_id for g in [make_generator(43)] for _ in range(20)]
    assert a == b and a != c


def test_sampling_follows_the_distribution():
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    logits = np.log(probs).astype(np.float32)
    g = make_generator(1)
    params = SamplingParams(temperature=1.0)
    draws = np.bincount([sample_row(logits, params, g).token_id for _ in range(4000)], minlength=4)
    np.testing.assert_allclose(draws / 4000, probs, atol=0.03)


def test_temperature_sharpens():
    logits = np.log(np.array([0.6, 0.4])).astype(np.float32)
    _, p = filtered_probs(logits.astype(np.float64), SamplingParams(temperature=0.5))
    np.testing.assert_allclose(p, np.array([0.36, 0.16]) / 0.52)


def test_top_k_top_p_min_p_filters():
    logits = np.log(np.array([0.4, 0.3, 0.2, 0.1])).astype(np.float64)
    cand, _ = filtered_probs(logits, SamplingParams(temperature=1.0, top_k=2))
    assert cand.tolist() == [0, 1]
    cand, _ = filtered_probs(logits, SamplingParams(temperature=1.0, top_p=0.65))
    assert cand.tolist() == [0, 1]  # 0.4 + 0.3 >= 0.65
    cand, _ = filtered_probs(logits, SamplingParams(temperature=1.0, top_p=0.7))
    assert cand.tolist() == [0, 1]  # exactly reaching top_p stops there
    cand, _ = filtered_probs(logits, SamplingParams(temperature=1.0, min_p=0.5))
    assert cand.tolist() == [0, 1, 2]  # p >= 0.5 * 0.4
    g = make_generator(0)
    one = SamplingParams(temperature=1.0, top_k=1)
    toks = {sample_row(logits.astype(np.float32), one, g).token_id for _ in range(50)}
    assert toks == {0}


def test_penalties():
    logits = np.array([2.0, 1.9, -1.0], np.float32)
    # repetition penalty divides positive logits of seen tokens (prompt included)
    assert sample_row(logits, SamplingParams(repetition_penalty=1.2), None, prompt_ids=[0]).token_id == 1
    # presence/frequency only count generated tokens
    assert sample_row(logits, SamplingParams(presence_penalty=0.2), None, prompt_ids=[0]).token_id == 0
    assert sample_row(logits, SamplingParams(frequency_penalty=0.06), None, output_ids=[0, 0]).token_id == 1
    neg = np.array([-1.0, -1.1], np.float32)  # negative logits are multiplied
    assert sample_row(neg, SamplingParams(repetition_penalty=2.0), None, output_ids=[0]).token_id == 1


@pytest.mark.parametrize("t", [1e-311, 1e-40, 1e-30, 9.99e-6])
def test_temperatures_below_1e_5_are_greedy(t):
    """vLLM's rule; a subnormal temperature used to overflow x / t and draw a masked token."""
    p = SamplingParams(temperature=t)
    assert p.greedy and not SamplingParams(temperature=1e-5).greedy
    logits = np.array([0.0, 3.0, -np.inf, 3.0, 2.9999], np.float32)
    g = make_generator(0)
    assert {sample_row(logits, p, g).token_id for _ in range(20)} == {1}  # lowest id among the maxima
    allowed = np.array([True, False, True, False, True])
    assert sample_row(logits, p, g, allowed=allowed).token_id == 4  # the mask holds


@pytest.mark.parametrize("rp", [1e-311, 1e-30, 0.5, 2.0, 1e39, 1e300])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_extreme_repetition_penalties_stay_in_range(rp, temperature):
    """Penalties far from 1 overflowed float32: +inf (the draw refused it: a server 500) or 0 * inf = NaN."""
    logits = np.array([0.0, 1.0, -2.0, 3.0, -np.inf, 2.5], np.float32)
    params = SamplingParams(temperature=temperature, repetition_penalty=rp)
    seen = [0, 1, 2, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow/invalid warnings either
        out = apply_penalties(logits.copy(), params, seen, [])
        assert not np.isnan(out).any() and not np.isposinf(out).any()
        assert np.isneginf(out[4]) and out[0] == 0.0  # masked stays masked; 0 is 0 under any penalty
        assert out[3] == 3.0 and out[5] == 2.5  # unseen tokens are untouched
        # the rule: positive / rp, negative * rp, saturating at float32's range
        big = float(np.finfo(np.float32).max)
        assert out[1] == np.float32(min(1.0 / rp, big)) and out[2] == np.float32(max(-2.0 * rp, -big))
        g = make_generator(1)
        draws = {sample_row(logits, params, g, prompt_ids=seen).token_id for _ in range(30)}
    assert 4 not in draws
    if temperature == 0.0:
        assert draws == ({1} if 1.0 / rp > 3.0 else {3})


def test_suppressed_tokens_are_never_chosen():
    logits = np.array([5.0, 1.0, 0.0], np.float32)
    assert sample_row(logits, SamplingParams(), None, suppress=[0]).token_id == 1


def test_logprobs_are_raw_model_logprobs():
    logits = np.array([1.0, 2.0, 3.0], np.float32)
    r = sample_row(logits, SamplingParams(logprobs=2, temperature=0.0), None)
    lp = logits - np.log(np.exp(logits).sum())
    assert r.token_id == 2
    assert r.logprob == pytest.approx(lp[2])
    assert list(r.top_logprobs) == [2, 1]
    assert r.top_logprobs[1] == pytest.approx(lp[1])


def test_nan_logits_raise():
    with pytest.raises(ValueError, match="NaN"):
        sample_row(np.array([np.nan, 1.0], np.float32), SamplingParams(), None)


@pytest.mark.parametrize("at", [0, 5, 9])
def test_nan_logits_raise_in_plain_greedy(at):
    logits = np.linspace(-1, 1, 10).astype(np.float32)
    logits[at] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sample_row(logits, SamplingParams(temperature=0.0), None)


def test_logprobs_match_float64_on_a_real_sized_vocabulary():
    # The float32-exp / float64-sum log-sum-exp against an all-float64 log-softmax: wide logits,
    # -inf entries, ties in the top set (lower id first).
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal(49152) * 12).astype(np.float32)
    logits[[3, 77]] = -np.inf
    logits[[10, 20]] = logits.max() + 1  # a tie at the top
    r = sample_row(logits, SamplingParams(temperature=0.0, logprobs=4), None)
    x = logits.astype(np.float64)
    lp = x - x.max() - np.log(np.exp(x - x.max()).sum())
    want = sorted(range(len(lp)), key=lambda t: (-lp[t], t))[:4]
    assert r.token_id == 10 and list(r.top_logprobs) == want
    assert abs(r.logprob - lp[10]) < 1e-6
    assert max(abs(v - lp[t]) for t, v in r.top_logprobs.items()) < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"temperature": -1}, ValueError),
        ({"temperature": "hot"}, TypeError),
        ({"top_p": 0}, ValueError),
        ({"top_p": 1.5}, ValueError),
        ({"top_k": -2}, ValueError),
        ({"min_p": 2}, ValueError),
        ({"n": 0}, ValueError),
        ({"max_tokens": 0}, ValueError),
        ({"stop": 5}, TypeError),
        ({"stop": [""]}, ValueError),
        ({"seed": -1}, ValueError),
        ({"logprobs": 50}, ValueError),
        ({"repetition_penalty": 0}, ValueError),
        ({"presence_penalty": 3}, ValueError),
        ({"temperature": float("nan")}, ValueError),
    ],
)
def test_bad_params(kwargs, exc):
    with pytest.raises(exc):
        SamplingParams(**kwargs)


def test_stop_normalization():
    assert SamplingParams(stop="\n").stop_strings == ["\n"]
    assert SamplingParams(stop=["a", "b"]).stop_strings == ["a", "b"]


def test_penalty_history_matches_the_id_lists():
    # the engine's incremental history must penalize exactly as the prompt/output lists do,
    # across growth, a fork (a copied list with its own history) and a list that shrank
    from infercore.engine.sampler import PenaltyHistory, apply_penalties

    rng = np.random.default_rng(4)
    base = rng.standard_normal(300).astype(np.float32)
    params = SamplingParams(temperature=1.0, repetition_penalty=1.3, presence_penalty=0.4, frequency_penalty=0.2)
    prompt = rng.integers(0, 300, 40).tolist()
    tokens = list(prompt)
    hist = PenaltyHistory(len(prompt))
    fork = None
    for step in range(120):
        tokens.append(int(rng.integers(0, 300)) if step % 3 else int(tokens[-1]))  # repeats too
        want = apply_penalties(base.copy(), params, tokens[: len(prompt)], tokens[len(prompt):])
        got = apply_penalties(base.copy(), params, (), (), hist.update(tokens))
        np.testing.assert_array_equal(got, want)
        if step == 50:
            fork_tokens = list(tokens)
            fork = PenaltyHistory(len(prompt))
        if fork is not None:
            fork_tokens.append(int(rng.integers(0, 300)))
            want = apply_penalties(base.copy(), params, fork_tokens[: len(prompt)], fork_tokens[len(prompt):])
            np.testing.assert_array_equal(apply_penalties(base.copy(), params, (), (), fork.update(fork_tokens)), want)
    short = tokens[: len(prompt) + 5]  # not a growing history: rebuilt from scratch
    want = apply_penalties(base.copy(), params, short[: len(prompt)], short[len(prompt):])
    np.testing.assert_array_equal(apply_penalties(base.copy(), params, (), (), hist.update(short)), want)
    r = sample_row(base, params, make_generator(0), history=PenaltyHistory(len(prompt)).update(tokens))
    listed = sample_row(base, params, make_generator(0), tokens[: len(prompt)], tokens[len(prompt):])
    assert r.token_id == listed.token_id


@pytest.mark.parametrize(
    "call, exc, word",
    [
        (lambda x, p, g: sample_row(None, p, g), ValueError, "logits"),
        (lambda x, p, g: sample_row("abc", p, g), TypeError, "logits"),
        (lambda x, p, g: sample_row(x[None], p, g), ValueError, "logits"),
        (lambda x, p, g: sample_row(x[:0], p, g), ValueError, "logits"),
        (lambda x, p, g: sample_row(x, {"temperature": 1.0}, g), TypeError, "params"),
        (lambda x, p, g: sample_row(x, p, 3), TypeError, "rng"),
        # an integer mask would index tokens instead of masking them: refused, not misread
        (lambda x, p, g: sample_row(x, p, g, allowed=np.ones(50, np.uint8)), TypeError, "allowed"),
        (lambda x, p, g: sample_row(x, p, g, allowed=[True] * 50), TypeError, "allowed"),
        (lambda x, p, g: sample_row(x, p, g, allowed=np.ones(49, bool)), ValueError, "allowed"),
        (lambda x, p, g: sample_row(x, p, g, suppress=[50]), ValueError, "suppress"),
        (lambda x, p, g: sample_row(x, p, g, suppress=[-1]), ValueError, "suppress"),
        (lambda x, p, g: sample_row(x, p, g, suppress=[1.5]), TypeError, "suppress"),
    ],
)
def test_sample_row_bad_inputs(call, exc, word):
    x = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    for params in (SamplingParams(), SamplingParams(temperature=0.8, top_k=5)):
        with pytest.raises(exc, match=word):
            call(x, params, make_generator(1))


def test_top_k_beyond_the_vocabulary_keeps_every_token():
    # 10^30 passed the params check and overflowed the native sampler's int64 inside the engine
    # loop, which stopped the whole server; past the vocabulary it means what 0 means
    logits = np.random.default_rng(3).standard_normal(1000).astype(np.float32)
    for top_k in (1000, 2**31, 2**63, 10**30):
        p = SamplingParams(temperature=0.8, top_k=top_k)
        got = [sample_row(logits, p, make_generator(s)).token_id for s in range(20)]
        want = [sample_row(logits, SamplingParams(temperature=0.8), make_generator(s)).token_id for s in range(20)]
        assert got == want, top_k
