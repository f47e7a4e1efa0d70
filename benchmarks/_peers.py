"""Optional peer libraries for benchmarks: imported only if installed, set to our thread count."""

from __future__ import annotations

from typing import Any

import infercore


def torch_or_none() -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(infercore.get_num_threads())
    return torch
