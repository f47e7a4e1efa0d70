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


def port(text: str) -> int:
    """A TCP port in [0, 65535] (0: any free port). Out of range, uvicorn said it was running and
    stopped at once (99999) or failed with a resolver error (-1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in [0, 65535], got {value}")
    return value
