"""Bad arguments get a ValueError/TypeError naming the argument (fuzz findings). Every case here
raises at entry once validated; none of them would hang if the check were lost (the values that
used to hang are only passed to constructors, or replaced by small ones that give garbage)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from infercore.synth import (
    CharsetFilter,
    HashEmbedder,
    LengthFilter,
    MinHasher,
    NearDedup,
    ScoreFilter,
    Spec,
    cluster_count,
    distinct_n,
    estimate_jaccard,
    near_duplicates,
    read_jsonl,
    shingles,
    write_jsonl,
    write_split,
)
from infercore.synth.minhash import MAX_K, MAX_PERM, lsh_params

NAN = math.nan


@pytest.fixture()
def fd(tmp_path):
    """A caller's open file descriptor, which a path argument must never take over and close."""
    p = tmp_path / "in.jsonl"
    p.write_text('{"text": "a"}\n', encoding="utf-8")
    d = os.open(p, os.O_RDWR)
    ident = _ident(d)
    yield d
    assert _ident(d) == ident, "the fd was closed"
    os.close(d)  # only ours: a closed number may have been reused by someone else


def _ident(d: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(d)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@pytest.mark.parametrize(("call", "name"), [
    (lambda d: read_jsonl(d), "path"),
    (lambda d: write_jsonl([{"text": "x"}], d), "path"),
    (lambda d: write_split([{"text": "x", "lang": "en"}], d, "lang"), "directory"),
    (lambda d: Spec.from_yaml(d), "spec"),
])
def test_paths_refuse_file_descriptors(fd, call, name):
    with pytest.raises(TypeError, match=f"{name}: expected a path"):
        call(fd)


def test_paths_bad_values(tmp_path):
    for bad in (True, None, b"x.jsonl"):
        with pytest.raises(TypeError, match="path"):
            read_jsonl(bad)
    with pytest.raises(ValueError, match="path: expected a non-empty path"):
        read_jsonl("")
    with pytest.raises(ValueError, match="path: expected a non-empty path"):
        write_jsonl([], str(tmp_path / "a\x00b"))
    with pytest.raises(TypeError, match="field: expected a str"):
        read_jsonl(tmp_path / "x.jsonl", ["text"])
    write_jsonl([{"text": "x"}], tmp_path / "ok.jsonl")  # PathLike still fine
    assert read_jsonl(tmp_path / "ok.jsonl") == [{"text": "x"}]


def test_score_filter_batch_size_threshold_and_field():
    def scorer(ts):
        return [1.0] * len(ts)

    for bad in (0, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="batch_size: expected an int >= 1"):
            ScoreFilter(scorer, 0.5, batch_size=bad)
    with pytest.raises(ValueError, match="threshold"):
        ScoreFilter(scorer, NAN)
    for bad in (-1, NAN, b"s"):
        with pytest.raises(TypeError, match="score_field: expected a str or None"):
            ScoreFilter(scorer, 0.5, score_field=bad)
    kept, dropped = ScoreFilter(scorer, 0.5, batch_size=1)([{"text": "a"}, {"text": "b"}], "text")
    assert [r["score"] for r in kept] == [1.0, 1.0] and not dropped


@pytest.mark.parametrize("k", [0, -1, -10**12, NAN, math.inf, 2.0, True, "5", MAX_K + 1, 2**63])
def test_shingle_size_must_be_a_positive_int(k):
    with pytest.raises(ValueError, match="k: expected an int in"):
        NearDedup(k=k)
    if k != -10**12:  # (without the check: a 10^12-long range)
        with pytest.raises(ValueError, match="k: expected an int in"):
            shingles("hello", k)
        with pytest.raises(ValueError, match="k: expected an int in"):
            near_duplicates(["hello world", "hello world!"], k=k)


def test_shingle_size_bounds_still_work():
    assert shingles("abc", 1) == {"a", "b", "c"}
    assert shingles("abc", MAX_K) == {"abc"}
    assert near_duplicates(["abc", "xyz"], k=1) == [None, None]


@pytest.mark.parametrize("num_perm", [10**12, MAX_PERM + 1, 1, 0, -5, 128.0, True, None])
def test_num_perm_is_bounded(num_perm):
    with pytest.raises(ValueError, match="num_perm: expected an int in"):
        MinHasher(num_perm)
    with pytest.raises(ValueError, match="num_perm: expected an int in"):
        NearDedup(num_perm=num_perm)
    if num_perm is not None and num_perm <= MAX_PERM + 1:  # larger ones took forever in lsh_params
        with pytest.raises(ValueError, match="num_perm: expected an int in"):
            near_duplicates(["a b c", "a b d"], num_perm=num_perm)
        with pytest.raises(ValueError, match="num_perm: expected an int in"):
            near_duplicates(["a b c", "a b d"], num_perm=num_perm, backend="datasketch")
        with pytest.raises(ValueError, match="num_perm: expected an int in"):
            lsh_params(0.8, num_perm)
    assert MinHasher(MAX_PERM).num_perm == MAX_PERM


def test_near_dedup_checks_its_arguments_at_construction():
    with pytest.raises(ValueError, match="threshold"):
        NearDedup(NAN)
    with pytest.raises(ValueError, match="unit"):
        NearDedup(unit="line")
    with pytest.raises(ValueError, match="backend"):
        NearDedup(backend="x")
    with pytest.raises(ValueError, match="unit"):
        near_duplicates(["a"], unit="line")


@pytest.mark.parametrize("n", [0, -1, -10**12, 2**63, MAX_K + 1, 3.0, NAN, None, True])
def test_hash_embedder_n(n):
    with pytest.raises(ValueError, match="n: expected an int in"):
        HashEmbedder(n=n)  # (-10**12 used to hang in encode; never reached here)


@pytest.mark.parametrize("dim", [10**12, HashEmbedder.MAX_DIM + 1, 1, 0, -3, 512.0])
def test_hash_embedder_dim(dim):
    with pytest.raises(ValueError, match="dim: expected an int in"):
        HashEmbedder(dim=dim)


def test_hash_embedder_bounds_still_work():
    x = HashEmbedder(dim=8, n=1).encode(["ab", ""])
    assert x.shape == (2, 8) and np.allclose(np.linalg.norm(x, axis=1), 1.0)


@pytest.mark.parametrize("block", [-1, 0, 2.5, True, None])
def test_cluster_count_block(block):
    with pytest.raises(ValueError, match="block: expected an int >= 1"):
        cluster_count(np.ones((4, 3)), block=block)


def test_cluster_count_small_block_same_answer():
    x = np.ones((4, 3))
    assert cluster_count(x, block=1) == cluster_count(x) == 1


def test_filters_refuse_nan_thresholds():
    for k in ("min_chars", "max_chars", "min_words", "max_words"):
        with pytest.raises(ValueError, match=f"{k}: expected a number >= 0"):
            LengthFilter(**{k: NAN})
    with pytest.raises(ValueError, match="max_words: 1 < min_words 3"):
        LengthFilter(min_words=3, max_words=1)
    with pytest.raises(ValueError, match="max_bad_ratio: expected a number >= 0"):
        CharsetFilter(max_bad_ratio=NAN)
    with pytest.raises(ValueError, match="max_symbol_ratio: expected a number >= 0"):
        CharsetFilter(max_symbol_ratio=NAN)
    assert LengthFilter(max_chars=math.inf).max_chars == math.inf  # inf = no limit, still allowed


def test_untyped_errors_become_type_errors():
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a str, got int"):
        distinct_n(["a", 2])
    h = MinHasher(16)
    with pytest.raises(TypeError, match="shingle_set: expected a set of str"):
        h.signature({1})
    with pytest.raises(TypeError, match="shingle_set: expected a set of str"):
        h.signature(None)
    with pytest.raises(TypeError, match="shingle_set: expected a set of str"):
        h.signature("abc")
    sig = h.signature({"a"})
    with pytest.raises(TypeError, match="sig_a"):
        estimate_jaccard(None, sig)
    with pytest.raises(TypeError, match="sig_b"):
        estimate_jaccard(sig, list(sig))
    assert estimate_jaccard(sig, sig) == 1.0
