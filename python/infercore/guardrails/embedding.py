"""One Embedder per model name for the embedding rails (injection classifier, topic, groundedness), so
a Guard with three of them loads MiniLM once."""

from __future__ import annotations

import functools
from typing import Any


@functools.lru_cache(maxsize=4)
def shared_embedder(name: str = "minilm") -> Any:
    """An `infercore.Embedder(name, precision="highest")`, loaded on first use and reused. Raises
    ValueError naming the model when it is not available (run `infercore models pull minilm`).
    Full float32 GEMMs (not the bf16x3 of AMX CPUs): the rails' thresholds were calibrated on
    those embeddings, which are the same bits on every CPU, so a decision at a threshold does not
    depend on the machine."""
    from ..embed.embedder import Embedder

    try:
        return Embedder(name, precision="highest")
    except (OSError, ValueError) as e:
        raise ValueError(f"embedder {name!r} is not available ({e}); run `infercore models pull {name}` "
                         f"or pass embedder=") from e


def embedder_available(name: str = "minilm") -> bool:
    from ..models import resolve_model

    try:
        resolve_model(name)
    except (OSError, ValueError):
        return False
    return True


def resolve_embedder(embedder: Any, arg: str = "embedder") -> Any:
    """None -> the shared MiniLM; a str -> shared_embedder(str); otherwise an object with encode()."""
    if embedder is None:
        return shared_embedder("minilm")
    if isinstance(embedder, str):
        return shared_embedder(embedder)
    if not callable(getattr(embedder, "encode", None)):
        raise TypeError(f"{arg}: expected None, a model name or an object with encode(), got {type(embedder).__name__}")
    return embedder
