"""The VectorIndex file format: a fixed header, then ids, vectors and (int8) scales, each
section 64-byte aligned so a load can memory-map them in place.

header (little-endian, 64 bytes): magic b"ICVINDEX", version u32, metric u8, dtype u8, 2 pad
bytes, dim u64, count u64, payload checksum (blake2b-64 of every byte after the header) u64,
16 reserved zero bytes.
"""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np

from .._fileio import atomic_write

MAGIC = b"ICVINDEX"
VERSION = 1
HEADER = struct.Struct("<8sIBBxxQQQ16x")
ALIGN = 64
METRICS = ("cosine", "ip")
DTYPES = ("float32", "float16", "int8")


def _pad(n: int) -> int:
    return -n % ALIGN


def layout(dim: int, count: int, dtype: str) -> list[tuple[str, int, int]]:
    """(section, offset, nbytes) of each payload section, offsets from the file start."""
    sizes = [("ids", count * 8), ("vectors", count * dim * np.dtype(dtype).itemsize)]
    if dtype == "int8":
        sizes.append(("scale", count * 4))
    out, off = [], HEADER.size
    for name, n in sizes:
        out.append((name, off, n))
        off += n + _pad(n)
    return out


def file_size(dim: int, count: int, dtype: str) -> int:
    _, off, n = layout(dim, count, dtype)[-1]
    return off + n + _pad(n)


def write(path: str, metric: str, dtype: str, dim: int, sections: dict[str, np.ndarray]) -> None:
    """Atomic: a temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    count = int(sections["ids"].shape[0])
    h = hashlib.blake2b(digest_size=8)
    payload: list[bytes | memoryview] = []
    for name, _off, n in layout(dim, count, dtype):
        b = memoryview(np.ascontiguousarray(sections[name]).reshape(-1).view(np.uint8))  # no copy if contiguous
        assert b.nbytes == n
        pad = b"\0" * _pad(n)
        h.update(b)
        h.update(pad)
        payload += [b, pad]
    checksum = int.from_bytes(h.digest(), "little")
    header = HEADER.pack(MAGIC, VERSION, METRICS.index(metric), DTYPES.index(dtype), dim, count, checksum)
    atomic_write(path, [header, *payload], sync_dir=True)


def read(path: str, mmap: bool) -> tuple[str, str, int, dict[str, np.ndarray]]:
    """-> (metric, dtype, dim, sections). Raises ValueError naming what is wrong with the file."""
    size = os.path.getsize(path)
    if size < HEADER.size:
        raise ValueError(f"{path}: truncated index file ({size} bytes, header needs {HEADER.size})")
    with open(path, "rb") as f:
        magic, version, metric_i, dtype_i, dim, count, checksum = HEADER.unpack(f.read(HEADER.size))
    if magic != MAGIC:
        raise ValueError(f"{path}: not an infercore index file (bad magic {magic!r})")
    if version != VERSION:
        raise ValueError(f"{path}: unsupported index version {version} (this build reads {VERSION})")
    if metric_i >= len(METRICS) or dtype_i >= len(DTYPES) or dim < 1:
        raise ValueError(f"{path}: corrupt header (metric {metric_i}, dtype {dtype_i}, dim {dim})")
    metric, dtype = METRICS[metric_i], DTYPES[dtype_i]
    if count > size or dim > size:  # before any size arithmetic on untrusted numbers
        raise ValueError(f"{path}: corrupt header (count {count}, dim {dim} for a {size}-byte file)")
    expected = file_size(dim, count, dtype)
    if size != expected:
        raise ValueError(f"{path}: truncated or corrupt index file ({size} bytes, header implies {expected})")
    raw = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, dtype=np.uint8)
    h = hashlib.blake2b(digest_size=8)
    h.update(memoryview(raw[HEADER.size :]))
    if int.from_bytes(h.digest(), "little") != checksum:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt)")
    shapes = {"ids": (count,), "vectors": (count, dim), "scale": (count,)}
    types = {"ids": np.int64, "vectors": np.dtype(dtype), "scale": np.float32}
    sections = {}
    for name, off, n in layout(dim, count, dtype):
        arr = raw[off : off + n].view(types[name]).reshape(shapes[name])
        arr.flags.writeable = False
        sections[name] = arr
    return metric, dtype, int(dim), sections
