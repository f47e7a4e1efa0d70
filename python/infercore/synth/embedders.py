"""Embedders for filtering and diversity: MiniLM through `infercore.Embedder`, or a model-free
hashed character-trigram embedder (for tests and machines without the model)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .minhash import check_k, hash32
from .textstats import normalize


class HashEmbedder:
    """L2-normalized counts of hashed character trigrams (dim buckets). Deterministic, no model."""

    name = "hash"
    MAX_DIM = 1 << 16  # 256 KiB of float32 per text

    def __init__(self, dim: int = 512, n: int = 3) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 2 <= dim <= self.MAX_DIM:
            raise ValueError(f"dim: expected an int in [2, {self.MAX_DIM}], got {dim!r}")
        self.dim, self.n = dim, check_k(n, "n")

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            s = f" {normalize(t)} "
            for j in range(max(len(s) - self.n + 1, 1)):
                out[i, hash32(s[j:j + self.n]) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def get_embedder(name: Any = "auto") -> Any:
    """"minilm" -> infercore.Embedder("minilm"); "hash" -> HashEmbedder(); "auto" -> MiniLM when it
    is installed or cached, else the hash embedder; an object with .encode(list[str]) is returned as is."""
    if not isinstance(name, str):
        if callable(getattr(name, "encode", None)):
            return name
        raise TypeError(f"embedder: expected 'auto', 'minilm', 'hash', a path or an object with encode(), "
                        f"got {type(name).__name__}")
    if name == "hash":
        return HashEmbedder()
    from ..embed.embedder import Embedder

    if name == "auto":
        from ..models import resolve_model

        try:
            resolve_model("minilm")
        except ValueError:
            return HashEmbedder()
        return Embedder("minilm")
    return Embedder(name)


def embedder_name(emb: Any) -> str:
    if getattr(emb, "name", None):
        return str(emb.name)
    path = getattr(emb, "path", None)
    if path:
        parts = os.path.normpath(str(path)).split(os.sep)
        return "Embedder(" + "/".join(parts[-2:]) + ")"
    return type(emb).__name__


def embed(emb: Any, texts: list[str]) -> np.ndarray:
    """Unit-norm float64 rows."""
    x = np.asarray(emb.encode(list(texts)), dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(texts):
        raise ValueError(f"embedder: expected [n, dim] embeddings, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
