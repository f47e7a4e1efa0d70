"""CUDA RoPE kernel (csrc/cuda/rope.cu) against the float64 reference, in place. Skipped without
a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import infercore
from infercore import ops
from infercore.models.rope import Rope
from infercore.ops import reference as ref

torch = pytest.importorskip("torch")
if not infercore.system_info()["cuda"]["available"] or not torch.cuda.is_available():
    pytest.skip("no CUDA device (or infercore built without CUDA)", allow_module_level=True)

F32_REL = 3.0 * 2.0**-24  # per output: a*c - b*s rounded (or fused): within ~2 ulp of |a| + |b|


def _check(got: np.ndarray, x0: np.ndarray, pos, rope: Rope, heads: int, interleaved: bool) -> None:
    d = rope.head_dim
    want = ref.rotary_embedding(x0, pos, rope.cos, rope.sin, heads, interleaved)
    v = np.abs(x0[:, : heads * d].astype(np.float64)).reshape(x0.shape[0], heads, d)
    if interleaved:
        pair = np.repeat(v[..., 0::2] + v[..., 1::2], 2, axis=-1)
    else:
        pair = np.concatenate([v[..., : d // 2] + v[..., d // 2 :]] * 2, axis=-1)
    err = np.abs(got[:, : heads * d].astype(np.float64) - want[:, : heads * d]).reshape(pair.shape)
    assert (err <= F32_REL * pair + 1e-44).all(), (err - F32_REL * pair).max()
    np.testing.assert_array_equal(got[:, heads * d :], x0[:, heads * d :])  # v heads untouched


def _tables(rope: Rope):
    return torch.from_numpy(rope.cos).cuda(), torch.from_numpy(rope.sin).cuda()


@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize(("t", "heads", "extra", "d"), [(1, 1, 0, 2), (7, 12, 3, 64), (33, 5, 2, 128), (3, 2, 1, 6),
                                                        (1000, 12, 3, 64), (70001, 1, 1, 4)])  # fmt: skip
def test_cuda_matches_reference(interleaved, t, heads, extra, d):
    rng = np.random.default_rng(t + d)
    rope = Rope(d, 1e4, 4096, "interleaved" if interleaved else "neox")
    x0 = (rng.standard_normal((t, (heads + extra) * d)) * 3).astype(np.float32)
    pos = rng.integers(0, 4096, t)
    x = torch.from_numpy(x0).cuda()
    cos, sin = _tables(rope)
    y = ops.rotary_embedding(x, torch.from_numpy(pos).cuda(), cos, sin, heads=heads, interleaved=interleaved)
    assert y is x
    _check(x.cpu().numpy(), x0, pos, rope, heads, interleaved)


def test_cuda_int32_positions_and_callers_stream():
    rope = Rope(64, 1e5, 600, "neox")
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((512, 15 * 64)).astype(np.float32)
    pos = np.arange(512)
    x = torch.from_numpy(x0).cuda()
    cos, sin = _tables(rope)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        ops.rotary_embedding(x, torch.from_numpy(pos).int().cuda(), cos, sin, heads=12, interleaved=False)
    s.synchronize()
    _check(x.cpu().numpy(), x0, pos, rope, 12, False)


def test_cuda_out_of_range_positions():
    rope = Rope(8, 1e4, 16, "interleaved")
    cos, sin = _tables(rope)
    x = torch.ones(3, 16, device="cuda")
    bad = torch.tensor([0, 16, 2], device="cuda")
    with pytest.raises(ValueError, match=r"positions: 16 is outside the table \[0, 16\)"):
        ops.rotary_embedding(x, bad, cos, sin, heads=2, interleaved=True)
    with pytest.raises(ValueError, match="positions: -1 is outside"):
        ops.rotary_embedding(x, torch.tensor([0, -1, 2], device="cuda"), cos, sin, heads=2, interleaved=True)
    assert torch.equal(x, torch.ones(3, 16, device="cuda"))
    # unchecked: the kernel leaves the bad row alone and rotates the others
    ops.rotary_embedding(x, bad, cos, sin, heads=2, interleaved=True, check_positions=False)
    torch.cuda.synchronize()
    assert torch.equal(x[1], torch.ones(16, device="cuda"))
    assert not torch.equal(x[2], torch.ones(16, device="cuda"))


def test_cuda_graph_capture_without_position_check():
    rope = Rope(64, 1e5, 64, "interleaved")
    cos, sin = _tables(rope)
    x = torch.randn(4, 15 * 64, device="cuda")
    pos = torch.tensor([3, 9, 27, 63], device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        ops.rotary_embedding(x, pos, cos, sin, heads=12, interleaved=True, check_positions=False)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        ops.rotary_embedding(x, pos, cos, sin, heads=12, interleaved=True, check_positions=False)
    x0 = np.random.default_rng(1).standard_normal((4, 15 * 64)).astype(np.float32)
    x.copy_(torch.from_numpy(x0))
    graph.replay()
    torch.cuda.synchronize()
    _check(x.cpu().numpy(), x0, pos.cpu().numpy(), rope, 12, True)


def test_cuda_device_mismatch_and_cpu_backend_errors():
    rope = Rope(8, 1e4, 16, "neox")
    x = torch.ones(2, 16, device="cuda")
    pos = torch.tensor([0, 1], device="cuda")
    cos, sin = _tables(rope)
    with pytest.raises(ValueError, match="cos: expected an array on a CUDA device"):
        ops.rotary_embedding(x, pos, rope.cos, sin, heads=2, interleaved=False)
    with pytest.raises(ValueError, match="positions: expected an array on a CUDA device"):
        ops.rotary_embedding(x, np.array([0, 1]), cos, sin, heads=2, interleaved=False)
    with pytest.raises(ValueError, match="backend='cpu' needs a host array"):
        ops.rotary_embedding(x, pos, cos, sin, heads=2, interleaved=False, backend="cpu")
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.rotary_embedding(torch.ones(16, 2, device="cuda").t(), pos, cos, sin, heads=2, interleaved=False)


def test_cupy_arrays_if_installed():
    cp = pytest.importorskip("cupy")
    rope = Rope(16, 1e4, 32, "neox")
    x0 = np.random.default_rng(2).standard_normal((7, 48)).astype(np.float32)
    x = cp.asarray(x0)
    pos = np.arange(7) * 3
    ops.rotary_embedding(x, cp.asarray(pos), cp.asarray(rope.cos), cp.asarray(rope.sin), heads=2, interleaved=False)
    _check(cp.asnumpy(x), x0, pos, rope, 2, False)
