"""The model runner for LLM(device="cuda"): a DeviceLlamaModel plus a PagedKVCache on the same
device. Batches arrive as host numpy (the scheduler's ForwardBatch, unchanged) and logits leave as
host float32 numpy, so the engine, scheduler and sampler are the same as on the CPU."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kv import PagedKVCache
from ..models.llama_device import DeviceLlamaModel
from .device import _DeviceSpec
from .runner import LlamaRunner


class DeviceLlamaRunner(LlamaRunner):
    def __init__(self, model: DeviceLlamaModel, cache: PagedKVCache) -> None:
        if cache.device != model.device:
            raise ValueError(f"cache: expected a PagedKVCache on {model.device}, got {cache.device or 'the host'}")
        super().__init__(model, cache)  # type: ignore[arg-type]  # same forward() signature

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        """Copy-on-write on the device: each (src, dst) block's K/V (and int8 scales), every layer."""
        if pairs:
            self.cache.copy_blocks(np.asarray([p[0] for p in pairs]), np.asarray([p[1] for p in pairs]))


def build_device_runner(host_model: Any, spec: _DeviceSpec, kv_cache_bytes: int, block_size: int,
                        kv_dtype: str) -> DeviceLlamaRunner:  # fmt: skip
    """Upload host_model's weights to spec's device and allocate the KV pool there."""
    model = DeviceLlamaModel(host_model, spec.torch_device, spec.backend)
    c = model.config
    cache = PagedKVCache.from_budget(kv_cache_bytes, c.num_layers, block_size, c.num_kv_heads, c.head_dim, kv_dtype,
                                     device=model.device)  # fmt: skip
    return DeviceLlamaRunner(model, cache)
