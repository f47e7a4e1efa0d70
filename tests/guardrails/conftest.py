from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The shared MiniLM Embedder of the embedding rails; skip if the model is not pulled (CI pulls it)."""
    from infercore.guardrails.embedding import embedder_available, shared_embedder

    if not embedder_available("minilm"):
        pytest.skip("MiniLM is not available: run `infercore models pull minilm`")
    return shared_embedder("minilm")


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    """The tiny random Llama (no download) for tests that only need an LLM to answer something."""
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM

    d = tiny_llama_dir(str(tmp_path_factory.mktemp("tiny") / "m"))
    return LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22)
