"""The CUDA launchers of silu_and_mul and RoPE reject bad sizes and pointers before any CUDA call,
so these run wherever _C_cuda is built, with or without a GPU (fake pointers never reach a launch)."""

from __future__ import annotations

import pytest

from infercore._native import cuda_module

mod = cuda_module()
if mod is None or not hasattr(mod, "silu_and_mul"):
    pytest.skip("infercore built without CUDA kernels", allow_module_level=True)

A, B = 1 << 20, 1 << 24  # 16-byte aligned fake device addresses, far apart


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, B, 1, 4, 0, 0), "null device pointer"),
        ((A, 0, 1, 4, 0, 0), "null device pointer"),
        ((A, B, -1, 4, 0, 0), "negative size"),
        ((A, B, 1, -4, 0, 0), "negative size"),
        ((A, B, 2, 4, 3, 0), "dtype code"),
        ((A, A + 16, 2, 4, 0, 0), "out: overlaps x"),  # out inside x
        ((A + 16, A, 2, 4, 0, 0), "out: overlaps x"),  # x starts inside out
        ((A + 1, B, 2, 4, 1, 0), "aligned"),
    ],
)
def test_silu_and_mul_launcher_validates(args, match):
    with pytest.raises(ValueError, match=match):
        mod.silu_and_mul(*args)


def test_silu_and_mul_launcher_empty_is_a_no_op():
    mod.silu_and_mul(0, 0, 0, 4, 0, 0)
    mod.silu_and_mul(0, 0, 3, 0, 0, 0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((A, 2, 16, 3, 8, B, B + 4096, B + 8192, 10, False, 0), "heads: 3 heads of 8 exceed the row width 16"),
        ((A, 2, 16, 2, 7, B, B + 4096, B + 8192, 10, False, 0), "even head_dim"),
        ((A, 2, 16, 2, 0, B, B + 4096, B + 8192, 10, False, 0), "even head_dim"),
        ((A, -2, 16, 2, 8, B, B + 4096, B + 8192, 10, False, 0), "negative size"),
        ((0, 2, 16, 2, 8, B, B + 4096, B + 8192, 10, False, 0), "null device pointer"),
        ((A, 2, 16, 2, 8, 0, B + 4096, B + 8192, 10, False, 0), "null device pointer"),
        ((A, 2, 16, 2, 8, B + 4, B + 4096, B + 8192, 10, False, 0), "aligned"),
        ((A, 2, 16, 2, 8, B, B + 4096, B + 8192, 0, False, 0), "empty table"),
    ],
)
def test_rope_launcher_validates(args, match):
    with pytest.raises(ValueError, match=match):
        mod.rope_inplace(*args)


def test_rope_launcher_nothing_to_rotate_is_a_no_op():
    mod.rope_inplace(0, 0, 16, 2, 8, 0, 0, 0, 10, True, 0)
    mod.rope_inplace(0, 5, 16, 0, 8, 0, 0, 0, 10, True, 0)
