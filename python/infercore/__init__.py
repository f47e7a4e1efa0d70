"""infercore: a high-performance inference core for LLM operations.

Native kernels (CPU SIMD with run-time ISA dispatch, CUDA, Triton) behind a small Python API.
`import infercore` loads only numpy and the CPU extension; CUDA, torch and Triton load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import ops, quant
from ._system import available_isas, get_isa, get_num_threads, set_isa, set_num_threads, system_info
from .search import VectorIndex

_LAZY = {
    "LLM": ("infercore.engine.llm", "LLM"),
    "AsyncLLM": ("infercore.engine.async_llm", "AsyncLLM"),
    "SamplingParams": ("infercore.engine.sampling_params", "SamplingParams"),
    "Embedder": ("infercore.embed.embedder", "Embedder"),
}


def __getattr__(name: str):  # the engine (tokenizers, jinja2, model loaders) loads on first use
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'infercore' has no attribute {name!r}")

__all__ = [
    "LLM",
    "AsyncLLM",
    "Embedder",
    "SamplingParams",
    "VectorIndex",
    "__version__",
    "available_isas",
    "get_isa",
    "get_num_threads",
    "ops",
    "quant",
    "set_isa",
    "set_num_threads",
    "system_info",
]
