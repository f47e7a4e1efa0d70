"""PagedKVCache(device=...): torch storage with the host layout and dtypes, copy_blocks (host and
device, int8 scales included), and a write through the Triton backend that lands where the host
cache's CPU write does. Device = "cpu" torch tensors here (the interpreter's device); the layout
code is the same for "cuda"."""

from __future__ import annotations

import os

import numpy as np
import pytest

from infercore.kv import PagedKVCache

torch = pytest.importorskip("torch")

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "fp8_e4m3": torch.float8_e4m3fn, "int8": torch.int8}  # fmt: skip


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_torch_layout_matches_host(dtype):
    host = PagedKVCache(2, 5, 4, 3, 16, dtype)
    dev = PagedKVCache(2, 5, 4, 3, 16, dtype, device="cpu")
    assert dev.device == torch.device("cpu") and host.device is None
    for i in range(2):
        assert isinstance(dev.k[i], torch.Tensor) and dev.k[i].dtype == DTYPES[dtype]
        assert tuple(dev.k[i].shape) == host.k[i].shape and dev.k[i].is_contiguous()
        assert not torch.any(dev.v[i].view(torch.uint8) != 0)
    assert dev.nbytes == host.nbytes
    if dtype == "int8":
        assert dev.k_scales[0].dtype == torch.float32 and tuple(dev.k_scales[0].shape) == (5, 4, 3)
    assert "device='cpu'" in repr(dev) and "device" not in repr(host)


def test_bad_device():
    with pytest.raises(ValueError, match="device"):
        PagedKVCache(1, 2, 4, 1, 8, "float16", device="no-such-device")


@pytest.mark.parametrize("device", [None, "cpu"])
@pytest.mark.parametrize("dtype", ["float16", "fp8_e4m3", "int8"])
def test_copy_blocks(device, dtype):
    c = PagedKVCache(2, 6, 4, 2, 8, dtype, device=device)
    rng = np.random.default_rng(0)

    def fill(a):  # random bytes: the copy is compared byte for byte
        if device is None:
            b = a.view(np.uint8)
            b[...] = rng.integers(0, 256, b.shape, dtype=np.uint8)
        else:
            b = a.view(torch.uint8)
            b.copy_(torch.from_numpy(rng.integers(0, 256, tuple(b.shape), dtype=np.uint8)))

    for i in range(2):
        for a in (c.k[i], c.v[i], *((c.k_scales[i], c.v_scales[i]) if dtype == "int8" else ())):
            fill(a)

    def snap(a):
        return (a.view(torch.uint8).numpy() if device else a.view(np.uint8)).copy()

    before = [[snap(x) for x in (c.k[i], c.v[i], *((c.k_scales[i], c.v_scales[i]) if dtype == "int8" else ()))]
              for i in range(2)]  # fmt: skip
    c.copy_blocks([1, 4], [3, 5])
    for i in range(2):
        arrays = (c.k[i], c.v[i], *((c.k_scales[i], c.v_scales[i]) if dtype == "int8" else ()))
        for b, a in zip(before[i], arrays, strict=True):
            now = snap(a)
            np.testing.assert_array_equal(now[3], b[1])
            np.testing.assert_array_equal(now[5], b[4])
            np.testing.assert_array_equal(now[[0, 1, 2, 4]], b[[0, 1, 2, 4]])  # nothing else moved
    with pytest.raises(ValueError, match="dst: block ids"):
        c.copy_blocks([0], [6])
    with pytest.raises(ValueError, match="equal lengths"):
        c.copy_blocks([0, 1], [2])
    c.copy_blocks([], [])


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET", "0") in ("", "0"), reason="needs the Triton interpreter")
@pytest.mark.parametrize("dtype", ["float16", "int8", "fp8_e4m3"])
def test_triton_write_lands_like_the_cpu_write(dtype):
    pytest.importorskip("triton")
    rng = np.random.default_rng(5)
    host = PagedKVCache(2, 4, 4, 2, 16, dtype)
    dev = PagedKVCache(2, 4, 4, 2, 16, dtype, device="cpu")
    k = rng.standard_normal((5, 2, 16)).astype(np.float32)
    v = rng.standard_normal((5, 2, 16)).astype(np.float32)
    slots = np.asarray([3, 4, -1, 9, 15], np.int64)
    host.write(1, k, v, slots)
    dev.write(1, torch.from_numpy(k), torch.from_numpy(v), slots, backend="triton")
    assert dev.layer(1)["k_scale"] is not None
    for h, d in ((host.k[1], dev.k[1]), (host.v[1], dev.v[1])):
        np.testing.assert_array_equal(d.view(torch.uint8).numpy().reshape(-1), h.view(np.uint8).reshape(-1))
    if dtype == "fp8_e4m3":
        assert dev.k_scales[1] == pytest.approx(host.k_scales[1])
    if dtype == "int8":
        np.testing.assert_allclose(dev.k_scales[1].numpy(), host.k_scales[1], rtol=1e-6)
