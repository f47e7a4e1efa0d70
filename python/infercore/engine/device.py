"""Which device LLM(device=...) runs the model on: "cpu" (the host model, numpy + _C) or "cuda"
(the device model: torch tensors through the ops' "cuda" backend, or "triton" where _C_cuda lacks
the decoder's kernels). `_DeviceSpec` is internal: tests pass `_DeviceSpec("cpu", "triton")` to run
the same device code path on CPU torch tensors under the Triton interpreter (TRITON_INTERPRET=1);
that is a correctness harness, not a supported way to serve.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

# _C_cuda entry points the device model reaches through the ops with backend="cuda"
CUDA_KERNELS = ("linear_gemv", "norm", "rope_inplace", "silu_and_mul", "paged_attention", "reshape_and_cache")


@dataclass(frozen=True)
class _DeviceSpec:
    """torch_device: where weights, activations and the KV cache live; backend: the ops backend."""

    torch_device: str
    backend: str

    def validate(self) -> _DeviceSpec:
        if self.backend not in ("cuda", "triton"):
            raise ValueError(f"device: backend must be 'cuda' or 'triton', got {self.backend!r}")
        kind = str(self.torch_device).split(":")[0]
        if kind not in ("cuda", "cpu"):
            raise ValueError(f"device: torch_device must be a 'cuda' or 'cpu' device, got {self.torch_device!r}")
        if kind == "cpu":
            if self.backend != "triton":
                raise ValueError("device: CPU torch tensors run only with backend='triton' (under the interpreter)")
            if os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
                raise ValueError("device: _DeviceSpec('cpu', 'triton') needs TRITON_INTERPRET=1 set before triton "
                                 "is imported (it runs the Triton kernels in the interpreter; tests only)")
        return self


def _missing_cuda_kernels() -> list[str]:
    from .._native import cuda_module

    mod = cuda_module()
    if mod is None:
        return list(CUDA_KERNELS)
    return [k for k in CUDA_KERNELS if not hasattr(mod, k)]


def resolve_device(device: Any) -> _DeviceSpec | None:
    """None for the host model ("cpu"); a validated _DeviceSpec otherwise. Raises ValueError for
    an unknown device and RuntimeError when "cuda" is asked for where no CUDA device is usable."""
    if isinstance(device, _DeviceSpec):
        return device.validate()
    if not isinstance(device, str):
        raise TypeError(f"device: expected 'cpu' or 'cuda', got {type(device).__name__}")
    if device == "cpu":
        return None
    head, _, index = device.partition(":")
    if head != "cuda" or (index and not index.isdigit()):
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    try:
        import torch
    except ImportError as e:
        raise RuntimeError(f"device={device!r}: the device model needs torch (with CUDA), which is not "
                           f"installed") from e  # fmt: skip
    if not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r}: no CUDA device is available (torch.cuda.is_available() is False); "
                           f"use device='cpu'")  # fmt: skip
    n = torch.cuda.device_count()
    i = int(index) if index else torch.cuda.current_device()
    if i >= n:
        raise ValueError(f"device: {device!r} does not exist ({n} CUDA device(s))")
    missing = _missing_cuda_kernels()
    backend = "cuda"
    if missing:
        backend = "triton"
        warnings.warn(f"device={device!r}: this infercore build lacks CUDA kernels ({', '.join(missing)}); "
                      f"running every op through Triton instead", RuntimeWarning, stacklevel=3)  # fmt: skip
    return _DeviceSpec(f"cuda:{i}", backend).validate()
