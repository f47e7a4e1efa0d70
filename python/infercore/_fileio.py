"""Atomic file writes: a crash never leaves a half-written file behind (ARCHITECTURE.md)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable


def check_path(path: object, name: str) -> str:
    """`path` as a str, or a TypeError naming the argument: only str and os.PathLike are paths.
    (An int is not refused by open(), which takes it as a file descriptor to read or write and
    then closes: a caller's stray int would close a file it still uses, stdin or a log.)"""
    if isinstance(path, (bool, int)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a path (str or os.PathLike), got {type(path).__name__}")
    out = os.fspath(path)
    if not isinstance(out, str):
        raise TypeError(f"{name}: expected a text path, got {type(out).__name__}")
    if not out or "\x00" in out:
        raise ValueError(f"{name}: expected a non-empty path without NUL characters, got {out!r}")
    return out


def atomic_write(path: str | os.PathLike[str], chunks: bytes | Iterable[bytes], *, sync_dir: bool = False) -> None:
    """Write to a temp file in the same folder, fsync it, rename it over `path`; with sync_dir,
    also fsync the folder so the rename itself survives a power loss."""
    full = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(full)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-" + os.path.basename(full) + "-")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in [chunks] if isinstance(chunks, (bytes, bytearray, memoryview)) else chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, full)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def map_readonly(path: str | os.PathLike[str], what: str, min_size: int):
    """(path str, read-only uint8 numpy memmap, size) of an untrusted file; ValueError naming the
    file if it cannot be opened or is shorter than `min_size` bytes."""
    import numpy as np

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    p = os.fspath(path)
    try:
        size = os.path.getsize(p)
    except OSError as e:
        raise ValueError(f"{p}: cannot open {what} file: {e.strerror}") from None
    if size < min_size:
        raise ValueError(f"{p}: file is {size} bytes, too small for a {what} header (truncated?)")
    return p, np.memmap(p, dtype=np.uint8, mode="r"), size
