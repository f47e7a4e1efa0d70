"""argparse value types shared by the CLI commands."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An int >= 1, so that argparse names the option in its error (`--threads 0`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value}")
    return value
