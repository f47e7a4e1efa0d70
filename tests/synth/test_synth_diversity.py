from __future__ import annotations

import math

import numpy as np
import pytest

from infercore.synth import (
    HashEmbedder,
    cluster_count,
    compare,
    distinct_n,
    mean_pairwise_distance,
    to_markdown,
    vendi_from_kernel,
    vendi_score,
)


def test_distinct_n_hand_computed():
    # tokens a b a | b c: 5 unigrams, 3 distinct; bigrams (a b) (b a) | (b c): 3, all distinct
    assert distinct_n(["a b a", "b c"], 1) == pytest.approx(3 / 5)
    assert distinct_n(["a b a", "b c"], 2) == pytest.approx(1.0)
    assert distinct_n(["a a a a"], 2) == pytest.approx(1 / 3)
    assert distinct_n(["Hello, hello!"], 1) == pytest.approx(3 / 4)  # hello , hello !
    assert distinct_n(["aab", "b"], 1, "char") == pytest.approx(2 / 4)
    assert distinct_n(["東京東京"], 2, "char") == pytest.approx(2 / 3)  # 東京 京東 東京
    assert distinct_n(["one"], 3) == 0.0 and distinct_n([], 1) == 0.0
    with pytest.raises(ValueError, match="n: expected"):
        distinct_n(["a"], 0)
    with pytest.raises(TypeError, match="single str"):
        distinct_n("a b", 1)


def test_vendi_hand_computed():
    e = np.eye(5)
    assert vendi_score(np.tile(e[0], (7, 1))) == pytest.approx(1.0)
    assert vendi_score(e) == pytest.approx(5.0)
    assert vendi_from_kernel(np.ones((4, 4))) == pytest.approx(1.0)
    assert vendi_from_kernel(np.eye(6)) == pytest.approx(6.0)
    # two orthogonal groups of three identical items: K/n has eigenvalues 1/2, 1/2 -> exp(ln 2) = 2
    x = np.vstack([np.tile(e[0], (3, 1)), np.tile(e[1], (3, 1))])
    assert vendi_score(x) == pytest.approx(2.0)
    # [[1, s], [s, 1]] / 2 has eigenvalues (1 +- s) / 2
    s = 0.5
    p, q = (1 + s) / 2, (1 - s) / 2
    expected = math.exp(-(p * math.log(p) + q * math.log(q)))
    assert vendi_from_kernel(np.array([[1, s], [s, 1]])) == pytest.approx(expected)
    assert expected == pytest.approx(1.7548, abs=1e-4)
    # unequal groups (2 of e0, 1 of e1): eigenvalues 2/3, 1/3
    assert vendi_score(np.array([e[0], e[0], e[1]])) == pytest.approx(math.exp(-(2 / 3 * math.log(2 / 3)
                                                                                  + 1 / 3 * math.log(1 / 3))))


def test_vendi_dual_paths_agree():
    rng = np.random.default_rng(0)
    for n, d in ((10, 50), (50, 10)):
        x = rng.standard_normal((n, d))
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        assert vendi_score(x) == pytest.approx(vendi_from_kernel(u @ u.T), rel=1e-9)
        assert vendi_score(x) >= 1.0 and vendi_score(x) <= min(n, d) + 1e-9


def test_vendi_bad_input():
    with pytest.raises(ValueError, match="symmetric"):
        vendi_from_kernel(np.array([[1.0, 0.2], [0.3, 1.0]]))
    with pytest.raises(ValueError, match="diagonal"):
        vendi_from_kernel(np.array([[2.0, 0.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="embeddings"):
        vendi_score(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        vendi_score(np.array([[np.nan, 1.0]]))


def test_mean_pairwise_distance_and_clusters_hand_computed():
    e = np.eye(3)
    # pairs: (e0, e0) 0, (e0, e1) 1, (e0, e1) 1 -> 2/3
    assert mean_pairwise_distance(np.array([e[0], e[0], e[1]])) == pytest.approx(2 / 3)
    assert mean_pairwise_distance(np.array([e[0], -e[0]])) == pytest.approx(2.0)
    assert mean_pairwise_distance(np.array([e[0]])) == 0.0
    assert mean_pairwise_distance(np.array([[3.0, 0, 0], [0, 5.0, 0]])) == pytest.approx(1.0)  # scale-free
    mixed = (e[1] + e[2]) / math.sqrt(2)  # cos 0.707 with e1 and e2
    x = np.array([e[0], e[0], e[1], mixed])
    assert cluster_count(x, 0.8) == 3
    assert cluster_count(x, 0.7) == 2
    # chaining: e1 ~ mixed ~ e2 at 0.7 joins all three although cos(e1, e2) = 0
    assert cluster_count(np.array([e[1], mixed, e[2]]), 0.7) == 1
    assert cluster_count(np.tile(e[0], (5, 1))) == 1 and cluster_count(np.eye(8)) == 8
    # block size does not change the answer
    rng = np.random.default_rng(1)
    y = rng.standard_normal((300, 4))
    assert cluster_count(y, 0.9, block=7) == cluster_count(y, 0.9, block=1024)


def test_report_compares_datasets():
    diverse = [{"text": f"topic {w} number {i}", "lang": "en"} for i, w in enumerate(
        ["astronomy", "baking", "chess", "diving", "economics", "fencing", "geology", "hiking"])]
    narrow = [{"text": "the same sentence again", "lang": "en"}] * 6 + [{"text": "the same sentence again!",
                                                                            "lang": "en"}] * 2
    rep = compare({"diverse": diverse, "narrow": narrow}, embedder=HashEmbedder())
    d, n = rep["datasets"]["diverse"], rep["datasets"]["narrow"]
    assert rep["embedder"] == "hash" and d["n"] == n["n"] == 8
    assert n["exact_dup_rate"] == pytest.approx(6 / 8)  # two distinct normalized texts
    assert n["near_dup_rate"] == pytest.approx(7 / 8)
    assert d["exact_dup_rate"] == 0.0 and d["distinct_1"] > n["distinct_1"]
    assert d["embedding"]["vendi"] > n["embedding"]["vendi"] >= 1.0
    assert d["embedding"]["mean_pairwise_distance"] > n["embedding"]["mean_pairwise_distance"]
    assert n["embedding"]["clusters"] == 1 and n["fields"] == {"lang": {"en": 8}}
    md = to_markdown(rep)
    assert "| metric | diverse | narrow |" in md and "| Vendi |" in md and "| clusters |" in md
    for bad in (0, -1, 10**9, 2.5, True):  # -1 was random.sample's "Sample larger than population"
        with pytest.raises(ValueError, match="max_items"):
            compare({"diverse": diverse}, embedder=HashEmbedder(), max_items=bad)
    assert compare({"d": diverse}, embedder=HashEmbedder(), max_items=3)["datasets"]["d"]["embedding"]["items"] == 3
