"""Memory-mapped safetensors reader: zero-copy numpy views, every offset checked against the file.

Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin,
end]}, "__metadata__": {str: str}}, then the byte buffer the offsets index into.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._fileio import map_readonly

_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit


def _ml_dtypes() -> Any:
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes


def _dtype_table() -> dict[str, tuple[np.dtype, int]]:
    """safetensors dtype name -> (numpy dtype used for the view, bytes per element)."""
    t = {
        "F64": np.dtype("<f8"),
        "F32": np.dtype("<f4"),
        "F16": np.dtype("<f2"),
        "I64": np.dtype("<i8"),
        "I32": np.dtype("<i4"),
        "I16": np.dtype("<i2"),
        "I8": np.dtype("i1"),
        "U64": np.dtype("<u8"),
        "U32": np.dtype("<u4"),
        "U16": np.dtype("<u2"),
        "U8": np.dtype("u1"),
        "BOOL": np.dtype("?"),
    }
    ml = _ml_dtypes()
    # without ml_dtypes the raw bits come back (bf16 as uint16, fp8 as uint8); `.dtype_name` says which
    t["BF16"] = np.dtype(ml.bfloat16) if ml else np.dtype("<u2")
    t["F8_E4M3"] = np.dtype(ml.float8_e4m3fn) if ml else np.dtype("u1")
    t["F8_E5M2"] = np.dtype(ml.float8_e5m2) if ml else np.dtype("u1")
    return {k: (v, v.itemsize) for k, v in t.items()}


@dataclass(frozen=True)
class SafetensorsTensor:
    name: str
    dtype_name: str  # as in the file: "F32", "BF16", ...
    shape: tuple[int, ...]
    offset: int  # absolute offset in the file
    nbytes: int
    data: np.ndarray  # zero-copy typed view into the memmap


class SafetensorsFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path, self._mm, size = map_readonly(path, "safetensors", 8)
        self.file_size = size
        n = int(self._mm[:8].view("<u8")[0])
        if n > _MAX_HEADER or 8 + n > size:
            raise ValueError(f"{self.path}: header length {n} exceeds the file ({size} bytes) or the 100 MB limit")
        try:
            header = json.loads(bytes(self._mm[8 : 8 + n]).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.path}: header is not valid UTF-8 JSON: {e}") from None
        if not isinstance(header, dict):
            raise ValueError(f"{self.path}: header must be a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError(f"{self.path}: __metadata__ must map strings to strings")
        self.metadata: dict[str, str] = meta
        self.data_start = 8 + n
        buf_size = size - self.data_start
        table = _dtype_table()
        self.tensors: dict[str, SafetensorsTensor] = {}
        for name, info in header.items():
            self.tensors[name] = self._tensor(name, info, table, buf_size)
        spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in self.tensors.values() if t.nbytes)
        for (_, end_a, a), (start_b, _, b) in itertools.pairwise(spans):
            if start_b < end_a:
                raise ValueError(f"{self.path}: tensor {b!r}: data overlaps tensor {a!r}")

    def _tensor(self, name: str, info: Any, table: dict[str, tuple[np.dtype, int]], buf_size: int) -> SafetensorsTensor:
        where = f"{self.path}: tensor {name!r}"
        if not isinstance(info, dict):
            raise ValueError(f"{where}: entry must be an object")
        dtype_name, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype_name, str) or dtype_name not in table:
            raise ValueError(f"{where}: unknown dtype {dtype_name!r} (known: {', '.join(table)})")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) and o >= 0 for o in offs)):
            raise ValueError(f"{where}: data_offsets must be [begin, end], got {offs!r}")
        begin, end = offs
        dt, itemsize = table[dtype_name]
        count = 1
        for d in shape:
            count *= d
        if end < begin or end - begin != count * itemsize:
            raise ValueError(f"{where}: data_offsets {offs} do not hold {count} elements of {dtype_name}")
        if end > buf_size:
            raise ValueError(f"{where}: data_offsets {offs} run past the end of the file")
        start = self.data_start + begin
        view = self._mm[start : start + end - begin].view(dt).reshape(shape)
        return SafetensorsTensor(name, dtype_name, tuple(shape), start, end - begin, view)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name].data
        except KeyError:
            raise KeyError(f"{self.path}: no tensor named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    def keys(self) -> list[str]:
        return list(self.tensors)

    def __repr__(self) -> str:
        return f"SafetensorsFile({self.path!r}, {len(self.tensors)} tensors)"
