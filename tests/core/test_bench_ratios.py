"""The bench harness's ratio columns: ours against the peers of a group, and Case.vs_dtype rows
against the same impl in another dtype (bench attention: fp8/int8 KV against float16)."""

from __future__ import annotations

import time

from infercore.bench import Case, run_cases


def _sleep(seconds: float):
    return lambda: time.sleep(seconds)


def test_vs_dtype_compares_the_same_impl_across_dtypes():
    cases = [
        Case("s", "op", "shape", "float16", "infercore", _sleep(0.004)),
        Case("s", "op", "shape", "float16", "peer", _sleep(0.008)),
        Case("s", "op", "shape", "fp8", "infercore", _sleep(0.002), vs_dtype="float16"),
        Case("s", "op", "shape", "fp8", "infercore-layers", _sleep(0.002), vs_dtype="float16"),  # no float16 row
        Case("s", "op", "other", "fp8", "infercore", _sleep(0.002), vs_dtype="float16"),  # other shape: none
    ]
    rows = {(r.shape, r.dtype, r.impl): r for r in run_cases(cases, bandwidth_gbps=10.0, quick=True)}
    f16, fp8 = rows[("shape", "float16", "infercore")], rows[("shape", "fp8", "infercore")]
    peer = rows[("shape", "float16", "peer")]
    # the ratios are the measured medians' (no timing bound here: timings never decide a unit test)
    assert f16.speedup_vs == {"peer": peer.median_s / f16.median_s}
    assert fp8.speedup_vs == {"float16": f16.median_s / fp8.median_s}
    assert fp8.vs_dtype == "float16" and f16.vs_dtype is None and peer.speedup_vs == {}
    assert rows[("shape", "fp8", "infercore-layers")].speedup_vs == {}
    assert rows[("other", "fp8", "infercore")].speedup_vs == {}
