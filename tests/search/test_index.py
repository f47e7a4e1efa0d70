"""VectorIndex: search vs exact numpy, ids, tombstones and compaction, filters, atomic save and
checked load (mmap and not), concurrent readers with a writer."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import infercore
from infercore import VectorIndex
from infercore.ops import reference


def _unit(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


@pytest.mark.parametrize("metric", ["cosine", "ip"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_search_matches_exact(metric, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 24)).astype(np.float32)
    ids = rng.permutation(10_000)[:500] * 7 - 3000  # arbitrary user ids, some negative
    index = VectorIndex(24, metric=metric, dtype=dtype)
    assert index.add(x, ids).tolist() == ids.tolist()
    assert len(index) == 500
    q = rng.standard_normal((6, 24)).astype(np.float32)
    scores, got = index.search(q, 10)
    base = _unit(x) if metric == "cosine" else x
    qq = _unit(q) if metric == "cosine" else q
    rs, ri = reference.topk_inner_product(qq, base, 10)
    tol = {"float32": 1e-4, "float16": 3e-3, "int8": 4e-2}[dtype] * (1 if metric == "cosine" else 25)
    np.testing.assert_allclose(scores, rs, atol=tol)
    if dtype == "float32":
        np.testing.assert_array_equal(got, ids[ri])
    else:  # quantised: most of the top-10 agree
        assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ids[ri], strict=True)]) > 0.8


def test_ids_auto_duplicates_and_errors():
    index = VectorIndex(4, metric="ip")
    a = index.add(np.ones((3, 4), np.float32))
    assert a.tolist() == [0, 1, 2]
    assert index.add(np.ones(4, np.float32), [10]).tolist() == [10]
    assert index.add(np.ones((1, 4), np.float32)).tolist() == [11]
    with pytest.raises(ValueError, match="already"):
        index.add(np.ones((1, 4), np.float32), [1])
    with pytest.raises(ValueError, match="duplicate"):
        index.add(np.ones((2, 4), np.float32), [20, 20])
    with pytest.raises(ValueError, match="vectors"):
        index.add(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 4), np.nan, np.float32))
    with pytest.raises(TypeError, match="vectors"):
        index.add(np.ones((1, 4), np.int32))
    with pytest.raises(ValueError, match="metric"):
        VectorIndex(4, metric="l2")
    with pytest.raises(ValueError, match=r"n: .*RAM"):
        index.reserve(10**15)
    assert len(index) == 5 and index.search(np.ones(4, np.float32), 1)[1].tolist() == [[0]]
    with pytest.raises(ValueError, match="dtype"):
        VectorIndex(4, dtype="bfloat16")
    with pytest.raises(ValueError, match="dim"):
        VectorIndex(0)
    with pytest.raises(KeyError):
        index.remove([999])
    assert len(index) == 5


def test_remove_tombstones_and_compaction():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 8)).astype(np.float32)
    index = VectorIndex(8, metric="ip")
    index.add(x, np.arange(100) + 1000)
    q = x[:3].copy()
    index.remove([1000])  # 1% removed: a tombstone, no compaction
    assert len(index) == 99 and index._snap.alive is not None
    _, got = index.search(q, 100)
    assert 1000 not in got and (got[:, :99] >= 0).all() and (got[:, 99] == -1).all()
    index.remove(set(range(1001, 1030)))  # 30% removed: compacted
    assert len(index) == 70 and index._snap.alive is None and index._snap.n == 70
    _, got = index.search(q, 5)
    _, ri = reference.topk_inner_product(q, x[30:], 5)
    np.testing.assert_array_equal(got, ri + 1030)
    index.add(x[:1], [1000])  # a removed id can come back
    s, got = index.search(x[:1], 1, filter=[1000])
    assert got[0, 0] == 1000 and len(index) == 71
    np.testing.assert_allclose(s[0, 0], x[0] @ x[0], rtol=1e-5)


def test_filters():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    index = VectorIndex(8, metric="cosine")
    index.add(x, np.arange(300) * 2)
    q = rng.standard_normal((2, 8)).astype(np.float32)
    for filt in ({4, 8, 12, 9999}, [4, 8, 12], np.array([4, 8, 12]), lambda ids: np.isin(ids, [4, 8, 12])):
        _, got = index.search(q, 5, filter=filt)
        assert set(got[0, :3].tolist()) == {4, 8, 12} and (got[:, 3:] == -1).all()
    _, got = index.search(q, 10, filter=lambda ids: ids % 4 == 0)
    assert (got % 4 == 0).all()
    with pytest.raises(TypeError, match="filter"):
        index.search(q, 3, filter=lambda ids: [True])


@pytest.mark.parametrize("dtype", ["float32", "int8"])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_roundtrip(tmp_path, dtype, mmap):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    index = VectorIndex(16, metric="ip", dtype=dtype)
    index.add(x, np.arange(200) * 3)
    index.remove([0, 3])  # tombstones are not saved
    path = tmp_path / "a.vindex"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["a.vindex"]  # no temp file left
    loaded = VectorIndex.load(path, mmap=mmap)
    assert (loaded.dim, loaded.metric, loaded.dtype, len(loaded)) == (16, "ip", dtype, 198)
    q = rng.standard_normal((4, 16)).astype(np.float32)
    s0, i0 = index.search(q, 7)
    s1, i1 = loaded.search(q, 7)
    np.testing.assert_array_equal(i0, i1)
    np.testing.assert_array_equal(s0, s1)
    if mmap:
        assert isinstance(loaded._snap.vectors.base, np.memmap) or not loaded._snap.vectors.flags.owndata
    loaded.add(x[:1], [1])  # a loaded (read-only) index copies on its first write
    assert loaded.search(x[:1], 1)[1][0, 0] == 1
    assert len(VectorIndex.load(path)) == 198  # the file itself is unchanged


def test_load_rejects_bad_files(tmp_path):
    index = VectorIndex(8, dtype="float16")
    index.add(np.random.default_rng(4).standard_normal((50, 8)).astype(np.float32))
    path = tmp_path / "i.vindex"
    index.save(path)
    data = path.read_bytes()
    cases = {
        "truncated": data[:-64],
        "short": data[:10],
        "magic": b"XXXXXXXX" + data[8:],
        "checksum": data[:-100] + bytes([data[-100] ^ 1]) + data[-99:],
        "version": data[:8] + (99).to_bytes(4, "little") + data[12:],
    }
    for word, blob in cases.items():
        bad = tmp_path / f"{word}.vindex"
        bad.write_bytes(blob)
        with pytest.raises(ValueError, match=word if word != "short" else "truncated"):
            VectorIndex.load(bad)


def test_concurrent_searches_with_a_writer():
    rng = np.random.default_rng(5)
    index = VectorIndex(16, metric="ip")
    base = rng.standard_normal((2000, 16)).astype(np.float32)
    index.add(base)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    expect = index.search(q, 5)[1]
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                s, i = index.search(q, 5)
                assert (i >= 0).all() and np.all(np.diff(s, axis=1) <= 0)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    small = rng.standard_normal((50, 16)).astype(np.float32) * 1e-3  # never beats the base rows
    for j in range(40):
        ids = index.add(small)
        if j % 2:
            index.remove(ids)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    np.testing.assert_array_equal(index.search(q, 5)[1], expect)
    assert len(index) == 2000 + 20 * 50


def test_reserve_and_exported():
    index = infercore.VectorIndex(4)
    s, i = index.search(np.ones((2, 4), np.float32), 3)  # empty index: all padding
    assert (i == -1).all() and np.isneginf(s).all()
    index.reserve(1000)
    assert index._snap.vectors.shape[0] == 1000 and len(index) == 0
    index.add(np.ones((10, 4), np.float32))
    assert index._snap.vectors.shape[0] == 1000


# ------------------------------------------------------------------------------ refine copy
def _recall(got, exact, k):
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(got, exact, strict=True)])


def test_int8_index_with_refine_recovers_recall():
    rng = np.random.default_rng(21)
    x = rng.standard_normal((20000, 64)).astype(np.float32)
    q = rng.standard_normal((16, 64)).astype(np.float32)
    ref = VectorIndex(64, "ip")
    ref.add(x)
    _, want = ref.search(q, 10)
    plain, fine = VectorIndex(64, "ip", "int8"), VectorIndex(64, "ip", "int8", refine="float16")
    plain.add(x)
    fine.add(x)
    r_plain, r_fine = _recall(plain.search(q, 10)[1], want, 10), _recall(fine.search(q, 10)[1], want, 10)
    assert r_fine >= 0.99 and r_fine >= r_plain, (r_plain, r_fine)


@pytest.mark.parametrize("mmap", [True, False])
def test_refine_copy_survives_save_load_remove_and_add(tmp_path, mmap):
    from infercore.search import _file

    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 24)).astype(np.float32)
    idx = VectorIndex(24, "cosine", "int8", refine="float32", refine_factor=3)
    ids = idx.add(x, ids=np.arange(1000, 1500))
    q = rng.standard_normal((4, 24)).astype(np.float32)
    before = idx.search(q, 7)
    path = str(tmp_path / "i.icv")
    idx.save(path)
    with open(path, "rb") as f:
        assert _file.HEADER.unpack(f.read(_file.HEADER.size))[1] == _file.VERSION_REFINE
    back = VectorIndex.load(path, mmap=mmap, refine_factor=3)
    assert (back.dtype, back.refine, back.refine_factor) == ("int8", "float32", 3)
    after = back.search(q, 7)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    # tombstones, then a compaction (> 20% removed), then an add into the loaded (mmap) index
    back.remove(ids[:150])
    back.add(x[:150], ids=np.arange(150))
    fresh = VectorIndex(24, "cosine", "int8", refine="float32", refine_factor=3)
    fresh.add(x[150:], ids=ids[150:])
    fresh.add(x[:150], ids=np.arange(150))
    got, want = back.search(q, 7), fresh.search(q, 7)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def test_refine_arguments_and_a_corrupt_refine_header(tmp_path):
    with pytest.raises(ValueError, match="refine: expected None or one of"):
        VectorIndex(8, dtype="float32", refine="float16")
    with pytest.raises(ValueError, match="refine: expected None or one of"):
        VectorIndex(8, dtype="int8", refine="int8")
    with pytest.raises(ValueError, match="refine_factor: expected an int >= 1"):
        VectorIndex(8, dtype="int8", refine="float16", refine_factor=0)
    idx = VectorIndex(8, dtype="int8")
    idx.add(np.ones((3, 8), np.float32))
    path = tmp_path / "v1.icv"
    idx.save(str(path))
    raw = bytearray(path.read_bytes())
    raw[14] = 1  # the refine byte of a version-1 file
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt header"):
        VectorIndex.load(str(path))
