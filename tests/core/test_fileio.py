"""Shared file helpers (python/infercore/_fileio.py)."""

from __future__ import annotations

import os
import pathlib

import pytest

from infercore._fileio import atomic_write, check_path


def test_check_path_takes_str_and_pathlike_only(tmp_path):
    assert check_path("a/b.txt", "path") == "a/b.txt"
    assert check_path(pathlib.Path("/x/y"), "path") == "/x/y"
    for bad in (3, 0, True, None, b"x", 2.5, ["a"]):
        with pytest.raises(TypeError, match="path: expected a path"):
            check_path(bad, "path")
    for bad in ("", "a\x00b"):
        with pytest.raises(ValueError, match="path"):
            check_path(bad, "path")
    # why ints are refused: open() would take one as a descriptor and close it afterwards
    fd = os.open(tmp_path / "kept.txt", os.O_WRONLY | os.O_CREAT)
    with pytest.raises(TypeError):
        check_path(fd, "path")
    os.fstat(fd)  # still open
    os.close(fd)


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "f.bin"
    atomic_write(p, b"old")
    atomic_write(p, [b"n", b"ew"], sync_dir=True)
    assert p.read_bytes() == b"new"
    assert [f.name for f in tmp_path.iterdir()] == ["f.bin"]  # no temp file left
