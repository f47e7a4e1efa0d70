"""The VectorIndex file format: a fixed header, then ids, vectors, (int8) scales and (with a
refine copy) the refine vectors, each section 64-byte aligned so a load can memory-map them in place.

header (little-endian, 64 bytes): magic b"ICVINDEX", version u32, metric u8, dtype u8, refine u8
(0: none, 1: float16, 2: float32), 1 pad byte, dim u64, count u64, payload checksum (blake2b-64 of
every byte after the header) u64, 16 reserved zero bytes. Version 1 files have no refine copy (the
byte is 0); a file with one is written as version 2, so older readers refuse it by its version.
"""

from __future__ import annotations

import hashlib
import os
import struct

import numpy as np

from .._fileio import atomic_write

MAGIC = b"ICVINDEX"
VERSION = 1  # written when there is no refine copy
VERSION_REFINE = 2
HEADER = struct.Struct("<8sIBBBxQQQ16x")
ALIGN = 64
METRICS = ("cosine", "ip")
DTYPES = ("float32", "float16", "int8")
REFINES = (None, "float16", "float32")


def _pad(n: int) -> int:
    return -n % ALIGN


def layout(dim: int, count: int, dtype: str, refine: str | None = None) -> list[tuple[str, int, int]]:
    """(section, offset, nbytes) of each payload section, offsets from the file start."""
    sizes = [("ids", count * 8), ("vectors", count * dim * np.dtype(dtype).itemsize)]
    if dtype == "int8":
        sizes.append(("scale", count * 4))
    if refine is not None:
        sizes.append(("refine", count * dim * np.dtype(refine).itemsize))
    out, off = [], HEADER.size
    for name, n in sizes:
        out.append((name, off, n))
        off += n + _pad(n)
    return out


def file_size(dim: int, count: int, dtype: str, refine: str | None = None) -> int:
    _, off, n = layout(dim, count, dtype, refine)[-1]
    return off + n + _pad(n)


def write(path: str, metric: str, dtype: str, dim: int, sections: dict[str, np.ndarray],
          refine: str | None = None) -> None:  # fmt: skip
    """Atomic: a temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    count = int(sections["ids"].shape[0])
    h = hashlib.blake2b(digest_size=8)
    payload: list[bytes | memoryview] = []
    for name, _off, n in layout(dim, count, dtype, refine):
        b = memoryview(np.ascontiguousarray(sections[name]).reshape(-1).view(np.uint8))  # no copy if contiguous
        assert b.nbytes == n
        pad = b"\0" * _pad(n)
        h.update(b)
        h.update(pad)
        payload += [b, pad]
    checksum = int.from_bytes(h.digest(), "little")
    header = HEADER.pack(MAGIC, VERSION if refine is None else VERSION_REFINE, METRICS.index(metric),
                         DTYPES.index(dtype), REFINES.index(refine), dim, count, checksum)  # fmt: skip
    atomic_write(path, [header, *payload], sync_dir=True)


def read(path: str, mmap: bool) -> tuple[str, str, int, dict[str, np.ndarray]]:
    """-> (metric, dtype, dim, sections); sections has "refine" when the file holds a refine
    copy. Raises ValueError naming what is wrong with the file."""
    size = os.path.getsize(path)
    if size < HEADER.size:
        raise ValueError(f"{path}: truncated index file ({size} bytes, header needs {HEADER.size})")
    with open(path, "rb") as f:
        magic, version, metric_i, dtype_i, refine_i, dim, count, checksum = HEADER.unpack(f.read(HEADER.size))
    if magic != MAGIC:
        raise ValueError(f"{path}: not an infercore index file (bad magic {magic!r})")
    if version not in (VERSION, VERSION_REFINE):
        raise ValueError(f"{path}: unsupported index version {version} (this build reads {VERSION} and "
                         f"{VERSION_REFINE})")  # fmt: skip
    if metric_i >= len(METRICS) or dtype_i >= len(DTYPES) or dim < 1 or refine_i >= len(REFINES) or \
            (refine_i != 0) != (version == VERSION_REFINE):  # fmt: skip
        raise ValueError(f"{path}: corrupt header (version {version}, metric {metric_i}, dtype {dtype_i}, refine "
                         f"{refine_i}, dim {dim})")  # fmt: skip
    metric, dtype, refine = METRICS[metric_i], DTYPES[dtype_i], REFINES[refine_i]
    if count > size or dim > size:  # before any size arithmetic on untrusted numbers
        raise ValueError(f"{path}: corrupt header (count {count}, dim {dim} for a {size}-byte file)")
    expected = file_size(dim, count, dtype, refine)
    if size != expected:
        raise ValueError(f"{path}: truncated or corrupt index file ({size} bytes, header implies {expected})")
    raw = np.memmap(path, dtype=np.uint8, mode="r") if mmap else np.fromfile(path, dtype=np.uint8)
    h = hashlib.blake2b(digest_size=8)
    h.update(memoryview(raw[HEADER.size :]))
    if int.from_bytes(h.digest(), "little") != checksum:
        raise ValueError(f"{path}: checksum mismatch (the file is corrupt)")
    shapes = {"ids": (count,), "vectors": (count, dim), "scale": (count,), "refine": (count, dim)}
    types = {"ids": np.int64, "vectors": np.dtype(dtype), "scale": np.float32, "refine": np.dtype(refine or "f4")}
    sections = {}
    for name, off, n in layout(dim, count, dtype, refine):
        arr = raw[off : off + n].view(types[name]).reshape(shapes[name])
        arr.flags.writeable = False
        sections[name] = arr
    return metric, dtype, int(dim), sections
