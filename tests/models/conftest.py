"""Real model files for the loader tests: an installed model wheel or the infercore cache
(`infercore models pull smollm2 minilm`, which the README's test command runs)."""

import os

import pytest

from infercore.models import resolve_model


def _resolve(name: str) -> str | None:
    try:
        return resolve_model(name)
    except ValueError:
        return None


@pytest.fixture(scope="session")
def smollm2_gguf() -> str:
    p = _resolve("smollm2")
    if not p or not os.path.isfile(p):
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    return p


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    p = _resolve("minilm")
    if not p or not os.path.isdir(p):
        pytest.skip("MiniLM is not available: run `infercore models pull minilm`")
    return p
