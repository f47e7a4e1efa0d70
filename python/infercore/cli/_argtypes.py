"""argparse value types shared by the CLI commands."""

from __future__ import annotations

import argparse
import math


def _int(text: str, ok, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An int >= 1, so that argparse names the option in its error (`--threads 0`)."""
    return _int(text, lambda v: v >= 1, "an int >= 1")


def port(text: str) -> int:
    """A TCP port in [0, 65535] (0: any free port). Out of range, uvicorn said it was running and
    stopped at once (99999) or failed with a resolver error (-1)."""
    return _int(text, lambda v: 0 <= v <= 65535, "a port number in [0, 65535]")


def _float(text: str, ok, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):  # nan passed every `< 0` check
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (seconds, fractions)."""
    return _float(text, lambda v: v >= 0, "a finite number >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _float(text, lambda v: v > 0, "a finite number > 0")
