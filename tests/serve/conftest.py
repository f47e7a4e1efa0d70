"""Fixtures for the server tests (the model is loaded once per session)."""

from __future__ import annotations

import importlib.util

import pytest

# the server's dependencies are not among the package's base dependencies: without them these
# tests are not collected, and the report header says so
_MISSING = [m for m in ("fastapi", "uvicorn", "httpx", "prometheus_client", "openai")
            if importlib.util.find_spec(m) is None]  # fmt: skip
collect_ignore_glob = ["test_*.py"] if _MISSING else []


def pytest_report_header(config):
    if _MISSING:
        return f"tests/serve not collected: missing {', '.join(_MISSING)}"
    return None


@pytest.fixture(scope="session")
def llm():
    from infercore import LLM

    try:
        return LLM("smollm2", max_num_seqs=4, kv_cache_bytes=32 << 20, max_model_len=512)
    except (FileNotFoundError, ValueError) as e:  # the model wheel is not installed
        pytest.skip(f"smollm2 is not available: {e}")
