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
