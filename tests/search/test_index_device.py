"""VectorIndex(device=...): vectors on a GPU, searched by the GPU top-k kernel. Without a GPU the
same code runs on a CPU torch device through the Triton interpreter (TRITON_INTERPRET=1, set by
tests/conftest.py), so the storage logic (add, growth, tombstones, compaction, save/load, refine)
is checked everywhere; results must equal the host index's."""

from __future__ import annotations

import os

import numpy as np
import pytest

from infercore import VectorIndex

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
    pytest.skip("no GPU and no Triton interpreter", allow_module_level=True)


def _pair(dtype, metric="ip", refine=None):
    kw = {"metric": metric, "dtype": dtype, "refine": refine}
    return VectorIndex(16, **kw), VectorIndex(16, device=DEVICE, **kw)


def _same(a, b, atol=1e-5):
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=0, atol=atol)


@pytest.mark.parametrize(("dtype", "refine"), [("float32", None), ("int8", None), ("int8", "float16")])
def test_device_index_equals_host_index_through_edits_and_files(tmp_path, dtype, refine):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    host, dev = _pair(dtype, refine=refine)
    assert dev.device.startswith(DEVICE) and isinstance(dev._snap.vectors, torch.Tensor)
    for ix in (host, dev):
        ix.add(x[:100], ids=np.arange(100) * 3)
        ix.add(x[100:])  # growth past the first capacity
    _same(host.search(q, 9), dev.search(q, 9), atol=1e-4 if dtype == "int8" else 1e-5)
    ids = host.search(q, 9)[1][0][:4]
    for ix in (host, dev):
        ix.remove(ids)
    _same(host.search(q, 9, filter=lambda i: i % 2 == 0), dev.search(q, 9, filter=lambda i: i % 2 == 0),
          atol=1e-4 if dtype == "int8" else 1e-5)  # fmt: skip
    for ix in (host, dev):  # > 20% removed: compaction
        ix.remove(np.arange(100) * 3)
    _same(host.search(q, 5), dev.search(q, 5), atol=1e-4 if dtype == "int8" else 1e-5)
    path = str(tmp_path / "d.icv")
    dev.save(path)
    back = VectorIndex.load(path, device=DEVICE)
    assert back.device == dev.device and isinstance(back._snap.vectors, torch.Tensor)
    _same(back.search(q, 5), dev.search(q, 5), atol=0)
    back.add(x[:2], ids=[-1, -2])  # into the loaded storage (never the read-only file map)
    assert set(back.search(x[:2], 1)[1][:, 0]) == {-1, -2}
    host_back = VectorIndex.load(path)
    _same(host_back.search(q, 5), host.search(q, 5), atol=0)


def test_device_argument_errors(monkeypatch):
    with pytest.raises(ValueError, match="device: expected None, 'cuda'"):
        VectorIndex(4, device="no-such-device")
    if DEVICE == "cpu":
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        with pytest.raises(ValueError, match="device: expected a CUDA device"):
            VectorIndex(4, device="cpu")
