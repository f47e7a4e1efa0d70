"""The host side of the decode-step CUDA graphs (models/cuda_graphs.py): which graph a step uses
and the one int32 upload that carries its slots, block tables and lengths. The graphs themselves
run in tests/gpu/test_llm_cuda.py."""

from __future__ import annotations

import numpy as np
import pytest

from infercore.models.cuda_graphs import BATCH_BUCKETS, graph_shape, pack_tables


@pytest.mark.parametrize("seqs, want", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (8, 8)])
def test_batch_bucket_is_the_smallest_that_holds_the_step(seqs, want):
    assert graph_shape(seqs, 1) == (want, 1)


@pytest.mark.parametrize("width, want", [(1, 1), (2, 2), (3, 4), (64, 64), (65, 128), (1000, 1024)])
def test_table_width_rounds_up_to_a_power_of_two(width, want):
    assert graph_shape(1, width) == (1, want)


@pytest.mark.parametrize("seqs", [0, BATCH_BUCKETS[-1] + 1, 64])
def test_no_graph_outside_the_buckets(seqs):
    assert graph_shape(seqs, 4) is None


def unpack(buf: np.ndarray, b: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return buf[: 2 * b].view(np.int64), buf[2 * b : 2 * b + b * w].reshape(b, w), buf[2 * b + b * w :]


@pytest.mark.parametrize("seed", range(5))
def test_pack_round_trips_and_pads(seed):
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 9))
    width = int(rng.integers(1, 40))
    b, w = graph_shape(t, width)
    bt = rng.integers(0, 2**31 - 1, (t, width), dtype=np.int32)
    lens = rng.integers(1, 2**31 - 1, t, dtype=np.int32)
    slots = rng.integers(-1, 2**40, t, dtype=np.int64)
    buf = pack_tables(b, w, bt, lens, slots)
    assert buf.dtype == np.int32 and buf.shape == (2 * b + b * w + b,)
    s, tables, ln = unpack(buf, b, w)
    np.testing.assert_array_equal(s[:t], slots)
    np.testing.assert_array_equal(tables[:t, :width], bt)
    np.testing.assert_array_equal(ln[:t], lens)
    # padding: no cache write, no key read, block 0 in unused table entries
    assert (s[t:] == -1).all() and (ln[t:] == 0).all()
    assert (tables[t:] == 0).all() and (tables[:, width:] == 0).all()


def test_pack_refuses_tables_larger_than_the_graph():
    bt = np.zeros((3, 5), np.int32)
    lens, slots = np.ones(3, np.int32), np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="do not fit"):
        pack_tables(2, 8, bt, lens, slots)
    with pytest.raises(ValueError, match="do not fit"):
        pack_tables(4, 4, bt, lens, slots)
    with pytest.raises(ValueError, match="do not fit"):
        pack_tables(4, 8, bt, lens[:2], slots)
