"""Shared test setup.

Triton kernels run for real on a GPU; without one they run under the Triton interpreter, which
must be switched on before triton is first imported.
"""

from __future__ import annotations

import os
import shutil

if os.environ.get("TRITON_INTERPRET") is None and shutil.which("nvidia-smi") is None:
    os.environ["TRITON_INTERPRET"] = "1"

import pytest

import infercore


@pytest.fixture(params=infercore.available_isas())
def isa(request):
    """Runs a test once per ISA level this machine has (FAISS-style), restoring the level after."""
    before = infercore.get_isa()
    infercore.set_isa(request.param)
    yield request.param
    infercore.set_isa(before)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture
def failing_sampler(monkeypatch):
    """The engine's sample_row raising for requests with seed 666: one request failing while it is
    sampled (the engine must abort it alone)."""
    import infercore.engine.core as core

    real = core.sample_row

    def sample_row(logits, p, *a, **kw):
        if p.seed == 666:
            raise ValueError("forced sampling failure: the model produced NaN")
        return real(logits, p, *a, **kw)

    monkeypatch.setattr(core, "sample_row", sample_row)
    return 666
