"""Fixtures for the server tests (the model is loaded once per session)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="session")
def llm():
    from infercore import LLM

    try:
        return LLM("smollm2", max_num_seqs=4, kv_cache_bytes=32 << 20, max_model_len=512)
    except (FileNotFoundError, ValueError) as e:  # the model wheel is not installed
        pytest.skip(f"smollm2 is not available: {e}")
