"""The decode fast path's tile edges: key counts that are not a multiple of its 32-key tile, every
GQA group shape it specialises (1-4 rows, and 5/8 rows = two register groups), block size 1
(one prefetch range per key), int8/fp8 scales per tile, against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from test_attention import Paged  # same directory (pytest puts it on sys.path)

from infercore import ops
from infercore.ops import reference as ref

CASES = [  # (seq_lens, block_size, Hq, Hkv, D, dtype)
    ([1, 7, 33, 4097], 16, 4, 1, 64, "float16"),     # 4 rows per kv head
    ([1, 7, 33, 95], 8, 9, 3, 64, "float8_e4m3fn"),  # 3 rows
    ([2, 31, 32, 65], 1, 4, 2, 32, "int8"),          # 2 rows, one block per key
    ([1, 7, 33, 64], 4, 3, 3, 48, "float32"),        # 1 row (MHA), D a multiple of 16 only
    ([5, 33, 70], 16, 8, 1, 64, "bfloat16"),         # 8 rows: two groups of 4
    ([7, 33, 100], 32, 10, 2, 72, "int8"),           # 5 rows: 4 + 1, D with a SIMD tail
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[5]}-bs{c[1]}-h{c[2]}/{c[3]}-d{c[4]}")
def test_decode_tile_edges(isa, case):
    lens, bs, hq, hkv, d, dt = case
    rng = np.random.default_rng(sum(lens) + hq)
    c = Paged(rng, lens, bs, hkv, d, dt)
    q = rng.standard_normal((len(lens), hq, d)).astype(np.float32)
    ks, vs = c.stored()
    want = ref.paged_attention_decode(q, ks, vs, c.bt, c.lens, None, c.ks, c.vs)
    for splits in (None, 1, 2, 5):
        got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, num_splits=splits, **c.args())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("window", [1, 31, 33])
def test_decode_window_not_tile_aligned(isa, window):
    rng = np.random.default_rng(window)
    c = Paged(rng, [40, 100], 16, 2, 64, "float16")
    q = rng.standard_normal((2, 8, 64)).astype(np.float32)
    want = ref.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, sliding_window=window)
    got = ops.paged_attention_decode(q, c.kc, c.vc, c.bt, c.lens, sliding_window=window)
    np.testing.assert_allclose(got, want, atol=1e-5)
