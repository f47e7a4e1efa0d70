"""The host side of the decode-step CUDA graphs (models/cuda_graphs.py): which graph a step uses
and the one int32 upload that carries its slots, token ids, positions, block tables and lengths.
The graphs themselves run in tests/gpu/test_llm_cuda.py."""

from __future__ import annotations

import numpy as np
import pytest

from infercore.models.cuda_graphs import BATCH_BUCKETS, graph_shape, pack_step, step_views


@pytest.mark.parametrize("seqs, want", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (8, 8)])
def test_batch_bucket_is_the_smallest_that_holds_the_step(seqs, want):
    assert graph_shape(seqs, 1) == (want, 1)


@pytest.mark.parametrize("width, want", [(1, 1), (2, 2), (3, 4), (64, 64), (65, 128), (1000, 1024)])
def test_table_width_rounds_up_to_a_power_of_two(width, want):
    assert graph_shape(1, width) == (1, want)


@pytest.mark.parametrize("seqs", [0, BATCH_BUCKETS[-1] + 1, 64])
def test_no_graph_outside_the_buckets(seqs):
    assert graph_shape(seqs, 4) is None


def step(rng: np.random.Generator, t: int, width: int):
    return (rng.integers(0, 2**40, t, dtype=np.int64), rng.integers(0, 2**40, t, dtype=np.int64),
            rng.integers(0, 2**31 - 1, (t, width), dtype=np.int32), rng.integers(1, 2**31 - 1, t, dtype=np.int32),
            rng.integers(-1, 2**40, t, dtype=np.int64))  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_pack_round_trips_and_pads(seed):
    rng = np.random.default_rng(seed)
    t = int(rng.integers(1, 9))
    width = int(rng.integers(1, 40))
    b, w = graph_shape(t, width)
    ids, pos, bt, lens, slots = step(rng, t, width)
    buf = pack_step(b, w, ids, pos, bt, lens, slots)
    assert buf.dtype == np.int32 and buf.shape == (6 * b + b * w + b,)
    v_slots, v_ids, v_pos, v_bt, v_lens = step_views(buf, b, w)
    assert [v.shape for v in (v_slots, v_ids, v_pos, v_bt, v_lens)] == [(b,), (b,), (b,), (b, w), (b,)]
    np.testing.assert_array_equal(v_slots[:t], slots)
    np.testing.assert_array_equal(v_ids[:t], ids)
    np.testing.assert_array_equal(v_pos[:t], pos)
    np.testing.assert_array_equal(v_bt[:t, :width], bt)
    np.testing.assert_array_equal(v_lens[:t], lens)
    # padding rows: no cache write, no key read, token 0 at position 0; block 0 in unused table entries
    assert (v_slots[t:] == -1).all() and (v_lens[t:] == 0).all()
    assert (v_ids[t:] == 0).all() and (v_pos[t:] == 0).all()
    assert (v_bt[t:] == 0).all() and (v_bt[:, width:] == 0).all()


def test_views_share_the_buffer():
    b, w = 2, 4
    buf = pack_step(b, w, *step(np.random.default_rng(0), 1, 3))
    views = step_views(buf, b, w)
    for v in views:
        assert np.shares_memory(v, buf)  # a graph reads these views: they must not be copies


def test_pack_refuses_steps_larger_than_the_graph():
    ids, pos, bt, lens, slots = step(np.random.default_rng(1), 3, 5)
    with pytest.raises(ValueError, match="do not fit"):
        pack_step(2, 8, ids, pos, bt, lens, slots)
    with pytest.raises(ValueError, match="do not fit"):
        pack_step(4, 4, ids, pos, bt, lens, slots)
    with pytest.raises(ValueError, match="do not fit"):
        pack_step(4, 8, ids, pos, bt, lens[:2], slots)
    with pytest.raises(ValueError, match="do not fit"):
        pack_step(4, 8, ids[:2], pos, bt, lens, slots)


def test_torch_views_read_the_same_values():
    torch = pytest.importorskip("torch")
    b, w = 4, 8
    buf = pack_step(b, w, *step(np.random.default_rng(2), 3, 5))
    tb = torch.from_numpy(buf)
    for want, got in zip(step_views(buf, b, w), step_views(tb, b, w), strict=True):
        assert got.data_ptr() >= tb.data_ptr()  # views into the one upload, not copies
        np.testing.assert_array_equal(got.numpy(), want)
