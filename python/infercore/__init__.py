"""infercore: a high-performance inference core for LLM operations.

Native kernels (CPU SIMD with run-time ISA dispatch, CUDA, Triton) behind a small Python API.
`import infercore` loads only numpy and the CPU extension; CUDA, torch and Triton load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import ops
from ._system import available_isas, get_isa, get_num_threads, set_isa, set_num_threads, system_info
from .search import VectorIndex

__all__ = [
    "VectorIndex",
    "__version__",
    "available_isas",
    "get_isa",
    "get_num_threads",
    "ops",
    "set_isa",
    "set_num_threads",
    "system_info",
]
