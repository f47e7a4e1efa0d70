from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedder():
    from infercore.embed import Embedder

    return Embedder("minilm")
