"""PagedKVCache: layouts, sizing from a byte budget, fp8 scales, validation; round trip through
reshape_and_cache and paged attention."""

from __future__ import annotations

import numpy as np
import pytest

from infercore import ops
from infercore.kv import PagedKVCache
from infercore.ops import reference as ref


@pytest.mark.parametrize("dtype, itemsize, extra", [("float32", 4, 0), ("float16", 2, 0), ("bfloat16", 2, 0),
                                                    ("fp8_e4m3", 1, 0), ("int8", 1, 4)])
def test_layout_and_sizes(dtype, itemsize, extra):
    c = PagedKVCache(3, 10, 16, 2, 64, dtype)
    assert len(c.k) == len(c.v) == 3
    assert c.k[0].shape == (10, 16, 2, 64) and c.k[0].dtype.itemsize == itemsize
    assert c.bytes_per_block == 3 * 16 * 2 * 2 * (64 * itemsize + extra)
    assert c.nbytes == 10 * c.bytes_per_block
    if dtype == "int8":
        assert c.k_scales[0].shape == (10, 16, 2) and c.k_scales[0].dtype == np.float32


def test_from_budget():
    per = PagedKVCache.bytes_per_block_for(30, 16, 3, 64, "float16")
    c = PagedKVCache.from_budget(per * 7 + per // 2, 30, 16, 3, 64, "float16")
    assert c.num_blocks == 7 and c.nbytes <= per * 8
    with pytest.raises(ValueError, match="kv_cache_bytes"):
        PagedKVCache.from_budget(per - 1, 30, 16, 3, 64, "float16")
    with pytest.raises(TypeError, match="kv_cache_bytes"):
        PagedKVCache.from_budget(1.5e9, 30, 16, 3, 64, "float16")
    with pytest.raises(ValueError, match=r"kv_cache_bytes: .*RAM"):  # 1 PiB
        PagedKVCache.from_budget(2**50, 30, 16, 3, 64, "float16")


@pytest.mark.parametrize("kwargs, err, word", [
    ({"num_layers": 0}, ValueError, "num_layers"),
    ({"num_blocks": -1}, ValueError, "num_blocks"),
    ({"num_blocks": 2**31}, ValueError, "num_blocks.*int32"),
    ({"num_blocks": 2**31 - 1}, ValueError, "num_blocks.*RAM"),  # 16 TiB
    ({"block_size": 2.0}, TypeError, "block_size"),
    ({"head_dim": True}, TypeError, "head_dim"),
    ({"dtype": "float64"}, TypeError, "dtype"),
    ({"dtype": "float16", "k_scale": 0.1}, ValueError, "k_scale"),
    ({"dtype": "fp8", "k_scale": -1.0}, ValueError, "k_scale"),
])
def test_validation(kwargs, err, word):
    args = {"num_layers": 1, "num_blocks": 4, "block_size": 16, "num_kv_heads": 2, "head_dim": 64,
            "dtype": "float16"} | kwargs
    with pytest.raises(err, match=word):
        PagedKVCache(**args)


def test_layer_index_checked():
    c = PagedKVCache(2, 4, 16, 2, 64, "float16")
    with pytest.raises(ValueError, match="layer"):
        c.layer(2)
    with pytest.raises(TypeError, match="layer"):
        c.layer("0")


@pytest.mark.parametrize("dtype, budget", [("float16", 2e-3), ("bfloat16", 1e-2), ("fp8_e4m3", 6e-2),
                                           ("int8", 3e-2)])
def test_round_trip_through_attention(dtype, budget):
    rng = np.random.default_rng(2)
    c = PagedKVCache(2, 40, 16, 3, 64, dtype)
    lens = np.array([150, 200], np.int32)
    bt = rng.permutation(40)[:26].reshape(2, 13).astype(np.int32)
    slots = np.concatenate([bt[s, np.arange(n) // 16] * 16 + np.arange(n) % 16 for s, n in enumerate(lens)])
    k = rng.standard_normal((len(slots), 3, 64)).astype(np.float32)
    v = rng.standard_normal((len(slots), 3, 64)).astype(np.float32)
    c.write(1, k, v, slots)
    if dtype == "fp8_e4m3":  # first write sets absmax / 448
        assert c.layer(1)["k_scale"] == pytest.approx(np.abs(k).max() / 448)
        with pytest.raises(ValueError, match="scales"):
            c.layer(0)
    q = rng.standard_normal((2, 9, 64)).astype(np.float32)
    got = ops.paged_attention_decode(q, block_tables=bt, seq_lens=lens, **c.layer(1))
    kd = np.zeros((40, 16, 3, 64))
    vd = np.zeros_like(kd)
    kd[slots // 16, slots % 16] = k
    vd[slots // 16, slots % 16] = v
    exact = ref.paged_attention_decode(q, kd, vd, bt, lens)
    assert np.abs(got - exact).max() <= budget


def test_prefault_makes_the_pool_resident():
    # a fresh interpreter, so that no freed-and-reused heap pages blur what is resident
    import subprocess
    import sys

    code = """
import resource
from infercore.kv import PagedKVCache

def rss_kb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (resource.getpagesize() // 1024)

a = rss_kb()
lazy = PagedKVCache(2, 4096, 16, 4, 64, "float16")  # 2 layers x K/V x 32 MiB
b = rss_kb()
eager = PagedKVCache(2, 4096, 16, 4, 64, "float16", prefault=True)
c = rss_kb()
assert not eager.k[0].any() and not lazy.v[1].any()
print(b - a, c - b)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    lazy_kb, eager_kb = map(int, out.stdout.split())
    assert lazy_kb < 16 * 1024, out.stdout  # 128 MiB reserved, almost none of it resident
    assert eager_kb >= 120 * 1024, out.stdout  # all 128 MiB resident at once
