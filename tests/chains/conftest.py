from __future__ import annotations

import pytest

pytest.importorskip("safetensors")


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM

    d = tiny_llama_dir(str(tmp_path_factory.mktemp("tiny") / "m"))
    return LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22)
