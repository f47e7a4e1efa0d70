from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def minilm():
    """The shared MiniLM Embedder of the embedding rails; skip if the model is not pulled (CI pulls it)."""
    from infercore.guardrails.embedding import embedder_available, shared_embedder

    if not embedder_available("minilm"):
        pytest.skip("MiniLM is not available: run `infercore models pull minilm`")
    return shared_embedder("minilm")
