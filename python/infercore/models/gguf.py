"""GGUF v2/v3 reader over numpy.memmap, and a small writer for tests.

The file is untrusted: every count, length, offset and size is checked against the file size
before anything is read or allocated. Errors are ValueError naming the file and the field.
Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from .._fileio import atomic_write, map_readonly

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_ARRAY_NESTING = 8


class GGUFValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# scalar value types -> little-endian numpy dtype
_SCALAR_DTYPES: dict[int, np.dtype] = {
    GGUFValueType.UINT8: np.dtype("<u1"),
    GGUFValueType.INT8: np.dtype("<i1"),
    GGUFValueType.UINT16: np.dtype("<u2"),
    GGUFValueType.INT16: np.dtype("<i2"),
    GGUFValueType.UINT32: np.dtype("<u4"),
    GGUFValueType.INT32: np.dtype("<i4"),
    GGUFValueType.FLOAT32: np.dtype("<f4"),
    GGUFValueType.BOOL: np.dtype("<u1"),
    GGUFValueType.UINT64: np.dtype("<u8"),
    GGUFValueType.INT64: np.dtype("<i8"),
    GGUFValueType.FLOAT64: np.dtype("<f8"),
}


class GGMLType(IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    BF16 = 30


# ggml type -> (elements per block, bytes per block); mirrors ggml's type_traits
GGML_BLOCK_SIZES: dict[int, tuple[int, int]] = {
    GGMLType.F32: (1, 4),
    GGMLType.F16: (1, 2),
    GGMLType.BF16: (1, 2),
    GGMLType.Q4_0: (32, 18),
    GGMLType.Q4_1: (32, 20),
    GGMLType.Q5_0: (32, 22),
    GGMLType.Q5_1: (32, 24),
    GGMLType.Q8_0: (32, 34),
    GGMLType.Q8_1: (32, 40),
    GGMLType.Q2_K: (256, 84),
    GGMLType.Q3_K: (256, 110),
    GGMLType.Q4_K: (256, 144),
    GGMLType.Q5_K: (256, 176),
    GGMLType.Q6_K: (256, 210),
    GGMLType.Q8_K: (256, 292),
    GGMLType.I8: (1, 1),
    GGMLType.I16: (1, 2),
    GGMLType.I32: (1, 4),
    GGMLType.I64: (1, 8),
    GGMLType.F64: (1, 8),
}

# unquantized ggml types -> numpy dtype (bf16 has none in plain numpy: stays raw bytes)
GGML_NUMPY_DTYPES: dict[int, np.dtype] = {
    GGMLType.F32: np.dtype("<f4"),
    GGMLType.F16: np.dtype("<f2"),
    GGMLType.F64: np.dtype("<f8"),
    GGMLType.I8: np.dtype("<i1"),
    GGMLType.I16: np.dtype("<i2"),
    GGMLType.I32: np.dtype("<i4"),
    GGMLType.I64: np.dtype("<i8"),
}


def ggml_type_name(ggml_type: int) -> str:
    try:
        return GGMLType(ggml_type).name
    except ValueError:
        return f"unknown({ggml_type})"


def ggml_nbytes(ggml_type: int, shape: tuple[int, ...]) -> int:
    """Bytes of a tensor of `shape` (numpy order: the last axis is ggml's ne[0], the blocked one)."""
    if ggml_type not in GGML_BLOCK_SIZES:
        raise ValueError(f"ggml_type: unknown or unsupported ggml type {ggml_type}")
    block, size = GGML_BLOCK_SIZES[ggml_type]
    n = 1
    for d in shape:
        n *= int(d)
    if shape and int(shape[-1]) % block != 0:
        raise ValueError(
            f"shape: last dimension {shape[-1]} is not a multiple of the {ggml_type_name(ggml_type)} block ({block})"
        )
    return n // block * size


@dataclass(frozen=True)
class GGUFTensor:
    name: str
    ggml_type: int
    shape: tuple[int, ...]  # numpy order = reversed ggml ne[]
    offset: int  # absolute offset in the file
    nbytes: int
    data: np.ndarray  # uint8 view into the memmap, zero-copy

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)

    def numpy(self) -> np.ndarray:
        """Zero-copy typed view for unquantized types (F32/F16/F64/I*); raises for block types."""
        dt = GGML_NUMPY_DTYPES.get(self.ggml_type)
        if dt is None and self.ggml_type == GGMLType.BF16:
            try:
                import ml_dtypes
            except ImportError:
                raise ValueError(f"tensor {self.name!r}: a BF16 view needs the ml_dtypes package") from None
            dt = np.dtype(ml_dtypes.bfloat16)
        if dt is None:
            raise ValueError(f"tensor {self.name!r}: type {self.type_name} has no plain numpy dtype; dequantize it")
        return self.data.view(dt).reshape(self.shape)


class _Cursor:
    """Bounds-checked little-endian reads from a buffer."""

    def __init__(self, buf: Any, size: int, path: str) -> None:
        self.buf = buf
        self.size = size
        self.pos = 0
        self.path = path

    def fail(self, what: str, reason: str) -> ValueError:
        return ValueError(f"{self.path}: {what}: {reason} (at byte {self.pos})")

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(what, f"needs {n} bytes but the file ends at {self.size} (truncated or corrupt)")

    def unpack(self, fmt: str, what: str) -> Any:
        n = struct.calcsize(fmt)
        self.need(n, what)
        v = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v[0] if len(v) == 1 else v

    def u32(self, what: str) -> int:
        return self.unpack("<I", what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", what)

    def string(self, what: str) -> str:
        n = self.u64(f"{what} length")
        self.need(n, what)
        raw = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(what, f"not valid UTF-8 ({e.reason})") from None

    def strings(self, count: int, what: str) -> list[str]:
        # the hot loop for vocabularies and merges: inlined bounds checks
        buf, size, pos, out = self.buf, self.size, self.pos, []
        unpack = struct.Struct("<Q").unpack_from
        for _ in range(count):
            if pos + 8 > size:
                self.pos = pos
                raise self.fail(what, "string length runs past the end of the file (truncated or corrupt)")
            (n,) = unpack(buf, pos)
            pos += 8
            if pos + n > size:
                self.pos = pos
                raise self.fail(what, f"string of {n} bytes runs past the end of the file (truncated or corrupt)")
            try:
                out.append(str(buf[pos : pos + n], "utf-8"))
            except UnicodeDecodeError as e:
                self.pos = pos
                raise self.fail(what, f"not valid UTF-8 ({e.reason})") from None
            pos += n
        self.pos = pos
        return out

    def array(self, elem_type: int, count: int, what: str) -> np.ndarray:
        dt = _SCALAR_DTYPES[elem_type]
        self.need(count * dt.itemsize, what)
        a = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos)
        self.pos += count * dt.itemsize
        return a


def _read_value(cur: _Cursor, vtype: int, key: str, depth: int = 0) -> Any:
    if vtype == GGUFValueType.STRING:
        return cur.string(f"key {key!r} string value")
    if vtype == GGUFValueType.ARRAY:
        if depth >= _MAX_ARRAY_NESTING:
            raise cur.fail(f"key {key!r}", f"arrays nested deeper than {_MAX_ARRAY_NESTING}")
        etype = cur.u32(f"key {key!r} array element type")
        count = cur.u64(f"key {key!r} array length")
        if etype in _SCALAR_DTYPES:
            a = cur.array(etype, count, f"key {key!r} array data")
            return [bool(x) for x in a] if etype == GGUFValueType.BOOL else a.tolist()
        if etype == GGUFValueType.STRING or etype == GGUFValueType.ARRAY:
            # every element takes at least 8 (string length) / 12 (array header) bytes
            min_size = 8 if etype == GGUFValueType.STRING else 12
            cur.need(count * min_size, f"key {key!r} array of {count} elements")
            if etype == GGUFValueType.STRING:
                return cur.strings(count, f"key {key!r} array element")
            return [_read_value(cur, etype, key, depth + 1) for _ in range(count)]
        raise cur.fail(f"key {key!r}", f"unknown array element type {etype}")
    if vtype in _SCALAR_DTYPES:
        v = cur.array(vtype, 1, f"key {key!r} value")[0]
        return bool(v) if vtype == GGUFValueType.BOOL else v.item()
    raise cur.fail(f"key {key!r}", f"unknown value type {vtype}")


class GGUFFile:
    """A parsed GGUF file. Tensor data stays in the memmap; `.tensors[name].data` is a view."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path, self._mm, size = map_readonly(path, "GGUF", 24)
        self.file_size = size
        # memoryview slicing is much cheaper than numpy slicing for ~100k small vocab strings
        cur = _Cursor(memoryview(self._mm), size, self.path)
        magic = bytes(self._mm[:4])
        if magic != GGUF_MAGIC:
            raise ValueError(f"{self.path}: bad magic {magic!r}, expected {GGUF_MAGIC!r} (not a GGUF file)")
        cur.pos = 4
        self.version = cur.u32("version")
        if self.version not in (2, 3):
            swapped = int.from_bytes(self.version.to_bytes(4, "little"), "big")
            hint = " (a big-endian file: not supported)" if swapped in (2, 3) else ""
            raise ValueError(f"{self.path}: unsupported GGUF version {self.version}{hint} (supported: 2, 3)")
        n_tensors = cur.u64("tensor count")
        n_kv = cur.u64("metadata count")
        # smallest KV: key length (8) + value type (4) + 1 byte value; smallest tensor info: 8+4+4+8
        cur.need(n_kv * 13, f"{n_kv} metadata entries")
        self.metadata: dict[str, Any] = {}
        self.metadata_types: dict[str, int] = {}
        for _ in range(n_kv):
            key = cur.string("metadata key")
            if key in self.metadata:
                raise cur.fail(f"key {key!r}", "duplicate metadata key")
            vtype = cur.u32(f"key {key!r} value type")
            self.metadata[key] = _read_value(cur, vtype, key)
            self.metadata_types[key] = vtype
        cur.need(n_tensors * 24, f"{n_tensors} tensor infos")
        infos = []
        for _ in range(n_tensors):
            name = cur.string("tensor name")
            n_dims = cur.u32(f"tensor {name!r} n_dims")
            if n_dims > _MAX_DIMS:
                raise cur.fail(f"tensor {name!r}", f"{n_dims} dimensions (max {_MAX_DIMS})")
            ne = [cur.u64(f"tensor {name!r} dim {i}") for i in range(n_dims)]
            ggml_type = cur.u32(f"tensor {name!r} type")
            offset = cur.u64(f"tensor {name!r} offset")
            infos.append((name, ne, ggml_type, offset))
        self.alignment = self._alignment()
        self.data_offset = -(-cur.pos // self.alignment) * self.alignment
        self.tensors: dict[str, GGUFTensor] = {}
        for name, ne, ggml_type, offset in infos:
            self.tensors[name] = self._tensor(name, ne, ggml_type, offset)
        self._check_overlaps()

    def _alignment(self) -> int:
        a = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            "general.alignment" in self.metadata and self.metadata_types["general.alignment"] != GGUFValueType.UINT32
        ) or not isinstance(a, int):
            raise ValueError(f"{self.path}: key 'general.alignment' must be a uint32")
        if a <= 0 or a & (a - 1):
            raise ValueError(f"{self.path}: key 'general.alignment' = {a} is not a positive power of two")
        return a

    def _tensor(self, name: str, ne: list[int], ggml_type: int, offset: int) -> GGUFTensor:
        where = f"{self.path}: tensor {name!r}"
        if name in self.tensors:
            raise ValueError(f"{where}: duplicate tensor name")
        if ggml_type not in GGML_BLOCK_SIZES:
            raise ValueError(f"{where}: unknown or unsupported ggml type {ggml_type}")
        if offset % self.alignment:
            raise ValueError(f"{where}: offset {offset} is not a multiple of the alignment {self.alignment}")
        shape = tuple(reversed(ne))
        try:
            nbytes = ggml_nbytes(ggml_type, shape)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        start = self.data_offset + offset
        if start + nbytes > self.file_size:
            raise ValueError(
                f"{where}: data [{start}, {start + nbytes}) runs past the end of the file ({self.file_size} bytes)"
            )
        return GGUFTensor(name, ggml_type, shape, start, nbytes, self._mm[start : start + nbytes])

    def _check_overlaps(self) -> None:
        spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in self.tensors.values() if t.nbytes)
        for (_, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(spans):
            if start_b < end_a:
                raise ValueError(f"{self.path}: tensor {name_b!r}: data overlaps tensor {name_a!r}")

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise ValueError(f"{self.path}: key 'general.architecture' is missing or not a string")
        return arch

    def __repr__(self) -> str:
        arch = self.metadata.get("general.architecture", "?")
        return f"GGUFFile({self.path!r}, v{self.version}, arch={arch}, {len(self.tensors)} tensors)"


# ---- writer (tests and tools): small files only, everything goes through memory ----


@dataclass(frozen=True)
class GGUFValue:
    """An explicitly typed metadata value for write_gguf (for arrays: `type` is the element type)."""

    type: GGUFValueType
    value: Any
    is_array: bool = False


def _infer_type(v: Any, key: str) -> GGUFValueType:
    if isinstance(v, bool):
        return GGUFValueType.BOOL
    if isinstance(v, int):
        if 0 <= v < 2**32:
            return GGUFValueType.UINT32
        if -(2**31) <= v < 0:
            return GGUFValueType.INT32
        return GGUFValueType.INT64 if v < 2**63 else GGUFValueType.UINT64
    if isinstance(v, float):
        return GGUFValueType.FLOAT32
    if isinstance(v, str):
        return GGUFValueType.STRING
    if isinstance(v, (list, tuple, np.ndarray)):
        return GGUFValueType.ARRAY
    raise TypeError(f"metadata[{key!r}]: cannot store a {type(v).__name__} in GGUF")


def _pack_value(vtype: int, v: Any, key: str, elem_type: int | None = None) -> bytes:
    if vtype == GGUFValueType.STRING:
        b = v.encode("utf-8")
        return struct.pack("<Q", len(b)) + b
    if vtype == GGUFValueType.ARRAY:
        items = list(v)
        if elem_type is None:
            elem_type = _infer_type(items[0], key) if items else GGUFValueType.UINT8
            if elem_type in (GGUFValueType.UINT32, GGUFValueType.INT32) and any(
                isinstance(x, int) and not isinstance(x, bool) and x < 0 for x in items
            ):
                elem_type = GGUFValueType.INT32
        body = b"".join(_pack_value(elem_type, x, key) for x in items)
        return struct.pack("<IQ", elem_type, len(items)) + body
    dt = _SCALAR_DTYPES.get(vtype)
    if dt is None:
        raise ValueError(f"metadata[{key!r}]: unknown value type {vtype}")
    return np.array(v, dtype=dt).tobytes()


def write_gguf(
    path: str | os.PathLike[str],
    metadata: dict[str, Any],
    tensors: dict[str, Any],
    *,
    version: int = 3,
    alignment: int | None = None,
) -> None:
    """Write a GGUF file atomically.

    metadata values: bool/int/float/str/list or GGUFValue for an explicit type.
    tensors: name -> float32/float16/float64/int array, or (raw uint8 bytes, ggml_type, numpy shape).
    """
    align = alignment or metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if isinstance(align, GGUFValue):
        align = align.value
    kv = b""
    for key, v in metadata.items():
        if isinstance(v, GGUFValue):
            if v.is_array:
                kv += _pack_value(GGUFValueType.STRING, key, key) + struct.pack("<I", GGUFValueType.ARRAY)
                kv += _pack_value(GGUFValueType.ARRAY, v.value, key, elem_type=v.type)
                continue
            vtype, v = v.type, v.value
        else:
            vtype = _infer_type(v, key)
        kv += _pack_value(GGUFValueType.STRING, key, key) + struct.pack("<I", vtype) + _pack_value(vtype, v, key)
    infos = b""
    blobs = []
    offset = 0
    inv_dtypes = {dt: t for t, dt in GGML_NUMPY_DTYPES.items()}
    for name, t in tensors.items():
        if isinstance(t, tuple):
            raw, ggml_type, shape = t
            raw = np.asarray(raw, dtype=np.uint8).tobytes()
            if len(raw) != ggml_nbytes(ggml_type, tuple(shape)):
                raise ValueError(f"tensors[{name!r}]: {len(raw)} bytes do not match type and shape")
        else:
            arr = np.ascontiguousarray(t)
            dt = arr.dtype.newbyteorder("<")
            if dt not in inv_dtypes:
                raise TypeError(f"tensors[{name!r}]: unsupported dtype {arr.dtype}")
            ggml_type, shape, raw = inv_dtypes[dt], arr.shape, arr.astype(dt).tobytes()
        ne = list(reversed(shape))
        infos += _pack_value(GGUFValueType.STRING, name, name) + struct.pack("<I", len(ne))
        infos += struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", ggml_type, offset)
        pad = -len(raw) % align
        blobs.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    head = GGUF_MAGIC + struct.pack("<IQQ", version, len(tensors), len(metadata)) + kv + infos
    head += b"\0" * (-len(head) % align)
    atomic_write(path, [head, *blobs])
