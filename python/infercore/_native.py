"""Loads the native extensions. `_C` (CPU) is required; `_C_cuda` is optional and loaded lazily
so that `import infercore` never touches CUDA."""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from types import ModuleType

from . import _C

_ISA_NAMES = ("scalar", "avx2", "avx512")

_env_isa = os.environ.get("INFERCORE_ISA", "").strip()
if _env_isa and _env_isa not in _ISA_NAMES:
    warnings.warn(
        f"INFERCORE_ISA={_env_isa!r} is not one of {_ISA_NAMES}; using {_C.get_isa()!r}",
        RuntimeWarning,
        stacklevel=2,
    )


@functools.lru_cache(maxsize=1)
def cuda_module() -> ModuleType | None:
    """The _C_cuda extension, or None when the wheel was built without CUDA."""
    try:
        return importlib.import_module("infercore._C_cuda")
    except ImportError:
        return None


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    mod = cuda_module()
    if mod is None:
        return 0
    n, _err = mod.device_count()
    return int(n)
