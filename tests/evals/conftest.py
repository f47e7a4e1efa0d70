from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    return tiny_llama_dir(str(tmp_path_factory.mktemp("tiny-evals") / "m"))


@pytest.fixture(scope="session")
def tiny_llm(tiny_model_dir):
    from infercore import LLM

    return LLM(tiny_model_dir, kv_cache_dtype="float32", kv_cache_bytes=1 << 22)
