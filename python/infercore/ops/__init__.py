"""Public ops. Each validates its arguments, picks a backend ("auto", "cpu", "cuda", "triton",
"reference") and returns the array type it was given."""

from __future__ import annotations

from . import reference
from .linear import linear
from .norm import l2_normalize, rms_norm

__all__ = ["l2_normalize", "linear", "reference", "rms_norm"]
