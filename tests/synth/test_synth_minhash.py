from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from infercore.benchmarks.bench_synth import planted_near_duplicates

from infercore.synth import MinHasher, estimate_jaccard, jaccard, near_duplicates, shingles
from infercore.synth.minhash import lsh_params


def test_shingles_and_exact_jaccard():
    assert shingles("abcdef", 3) == {"abc", "bcd", "cde", "def"}
    assert shingles("ab", 3) == {"ab"} and shingles("", 3) == set()
    assert shingles("The  Cat sat", 2, "word") == {"the cat", "cat sat"}
    # {abc,bcd,cde,def} vs {abc,bcd,cde,dex}: 3 shared of 5 distinct
    assert jaccard(shingles("abcdef", 3), shingles("abcdex", 3)) == pytest.approx(3 / 5)
    assert jaccard(set(), set()) == 1.0
    with pytest.raises(ValueError, match="unit"):
        shingles("x", 3, "line")


def _set_pair(shared: int, only_a: int, only_b: int) -> tuple[set[str], set[str]]:
    common = {f"c{i}" for i in range(shared)}
    return common | {f"a{i}" for i in range(only_a)}, common | {f"b{i}" for i in range(only_b)}


@pytest.mark.parametrize(("shared", "a", "b"), [(80, 10, 10), (50, 25, 25), (10, 45, 45), (100, 0, 0), (0, 30, 30)])
def test_minhash_estimate_close_to_jaccard(shared, a, b):
    sa, sb = _set_pair(shared, a, b)
    true = shared / (shared + a + b)
    h = MinHasher(num_perm=512, seed=3)
    est = estimate_jaccard(h.signature(sa), h.signature(sb))
    # standard error sqrt(J(1-J)/512) <= 0.022; 4 sigma
    assert abs(est - true) <= 0.09
    if true in (0.0, 1.0):
        assert est == true


@settings(max_examples=40, deadline=None)
@given(st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=40),
       st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=40))
def test_minhash_estimate_property(a, b):
    h = MinHasher(num_perm=256, seed=1)
    est = estimate_jaccard(h.signature(a), h.signature(b))
    assert abs(est - jaccard(a, b)) <= 0.25  # > 7 standard errors at num_perm=256
    assert estimate_jaccard(h.signature(a), h.signature(set(a))) == 1.0


def test_lsh_params_fit_num_perm():
    for t in (0.5, 0.8, 0.9):
        b, r = lsh_params(t, 128)
        assert b * r <= 128 and b >= 1 and r >= 1
        # the S-curve crosses 1/2 near the threshold
        assert abs((1 / b) ** (1 / r) - t) < 0.2


@pytest.mark.parametrize("backend", ["numpy", "datasketch"])
def test_dedup_recall_on_planted_near_duplicates(backend):
    if backend == "datasketch":
        pytest.importorskip("datasketch")
    texts, planted = planted_near_duplicates()
    assert len(texts) == 1000 and len(planted) == 200
    dup = near_duplicates(texts, 0.8, backend=backend)
    flagged = {i for i, d in enumerate(dup) if d is not None}
    recall = len(flagged & planted) / len(planted)
    precision = len(flagged & planted) / max(len(flagged), 1)
    assert recall >= 0.95, recall
    assert precision >= 0.95, precision
    for i in flagged:  # every flagged pair really is >= 0.8 similar, and points to an earlier kept text
        assert dup[i] < i and dup[dup[i]] is None
        assert jaccard(shingles(texts[i]), shingles(texts[dup[i]])) >= 0.8


def test_dedup_minhash_verify_and_bad_args():
    texts, planted = planted_near_duplicates(seed=1, n_base=300, n_dup=60)
    dup = near_duplicates(texts, 0.8, verify="minhash")
    flagged = {i for i, d in enumerate(dup) if d is not None}
    assert len(flagged & planted) / len(planted) >= 0.9
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(texts, 1.5)
    with pytest.raises(ValueError, match="backend"):
        near_duplicates(texts, 0.8, backend="faiss")
    with pytest.raises(ValueError, match="num_perm"):
        MinHasher(1)
    assert near_duplicates([], 0.8) == []
    assert np.all(MinHasher(8).signature(set()) == MinHasher(8).signature(set()))
