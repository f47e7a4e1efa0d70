"""VectorIndex: exact top-k search over float32 / float16 / int8 vectors with user ids.

Readers never lock: every search works on an immutable snapshot (arrays, ids, alive mask) that
writers replace under a lock, so any number of threads may search while one adds or removes.
Writers only append past the rows a snapshot can see, or build new arrays (growth, removal
masks, compaction), so a snapshot is never changed under a reader.
"""

from __future__ import annotations

import numbers
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import ops
from .._system import check_fits_in_ram
from . import _file

_COMPACT_FRACTION = 0.2  # compact when more than this share of the rows is removed


@dataclass(frozen=True)
class _Snapshot:
    vectors: np.ndarray  # [>= n, dim] storage dtype (spare capacity past n)
    scale: np.ndarray | None  # [>= n] float32 (int8 only)
    ids: np.ndarray  # [>= n] int64 user ids
    alive: np.ndarray | None  # [n] bool, None when nothing is removed
    n: int  # rows in use (alive or tombstoned)
    refine: np.ndarray | None = None  # [>= n, dim] the higher-precision copy search re-scores with
    # vectors/scale are torch tensors on the index's device when it has one; ids/alive/refine stay host


class VectorIndex:
    """Exact vector search. metric "cosine" stores unit vectors (a zero vector stays zero and
    scores 0) and searches by inner product; "ip" stores vectors as given. dtype "int8" stores a
    symmetric per-row int8 quantisation (max|x|/127).

    refine ("float16" or "float32", more precise than dtype): also keep the vectors at that
    precision; a search scans the quantized rows for k * refine_factor candidates and re-scores
    them on the refine copy (ops.topk_inner_product(refine=...), FAISS's IndexRefineFlat scheme),
    which recovers the recall int8 rounding loses. The copy is saved with the index and, loaded
    with mmap=True, stays on disk except for the candidate rows each search reads.

    device ("cuda", "cuda:N", a torch.device): the vectors (and int8 scales) live on that GPU as
    torch tensors and searches run the GPU top-k kernel (ops backend "auto": CUDA, else Triton);
    queries and results stay host numpy, as do ids, tombstones and the refine copy (re-scoring
    runs on the CPU). A CPU torch device is accepted only under TRITON_INTERPRET=1 (the Triton
    kernel on the interpreter, k <= 256: tests)."""

    def __init__(self, dim: int, metric: str = "cosine", dtype: str = "float32", refine: str | None = None,
                 refine_factor: int = 4, device: Any = None) -> None:  # fmt: skip
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"dim: expected an int, got {type(dim).__name__}")
        if dim < 1:
            raise ValueError(f"dim: expected >= 1, got {dim}")
        if metric not in _file.METRICS:
            raise ValueError(f"metric: expected one of {_file.METRICS}, got {metric!r}")
        if dtype not in _file.DTYPES:
            raise ValueError(f"dtype: expected one of {_file.DTYPES}, got {dtype!r}")
        finer = {"int8": ("float16", "float32"), "float16": ("float32",), "float32": ()}[dtype]
        if refine is not None and refine not in finer:
            raise ValueError(f"refine: expected None or one of {finer} (more precise than dtype {dtype!r}), "
                             f"got {refine!r}")  # fmt: skip
        if isinstance(refine_factor, bool) or not isinstance(refine_factor, numbers.Integral) or refine_factor < 1:
            raise ValueError(f"refine_factor: expected an int >= 1, got {refine_factor!r}")
        self.dim, self.metric, self.dtype = int(dim), metric, dtype
        self.refine, self.refine_factor = refine, int(refine_factor)
        self._dev = _torch_device(device)
        self.device = None if self._dev is None else str(self._dev)
        self._lock = threading.Lock()
        self._row_of: dict[int, int] = {}
        self._removed = 0
        self._next_id = 0  # fresh ids start above every id ever added
        self._snap = self._empty_snapshot(0)

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self._row_of)

    def reserve(self, n: int) -> None:
        """Make room for n vectors in total without reallocating on add."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n: expected an int >= 0, got {n!r}")
        with self._lock:
            if n > self._snap.vectors.shape[0]:
                if self._dev is None:  # host storage: refuse what cannot fit, naming n
                    one = self._empty_snapshot(1)
                    row = sum(a.nbytes for a in (one.vectors, one.scale, one.ids, one.refine) if a is not None)
                    check_fits_in_ram(n * row, "n", f"storage for {n} vectors of {row} bytes")
                try:
                    self._snap = self._grown(self._snap, int(n))
                except MemoryError as e:
                    raise ValueError(f"n: no memory left for {n} vectors") from e

    # ------------------------------------------------------------------ writes
    def add(self, vectors: Any, ids: Any = None) -> np.ndarray:
        """Add [m, dim] (or [dim]) vectors; ids: int64 user ids (any values, unique, not already
        present) or None for fresh ones. Returns the ids."""
        x = np.asarray(vectors)
        if x.dtype.kind != "f":
            raise TypeError(f"vectors: expected a float array, got dtype {x.dtype}")
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"vectors: expected shape [m, {self.dim}], got {tuple(np.shape(vectors))}")
        if not np.isfinite(x).all():
            raise ValueError("vectors: contains NaN or Inf")
        rows, scale, fine = self._encode(x)
        with self._lock:
            new_ids = self._check_new_ids(ids, x.shape[0])
            snap = self._snap
            if snap.n + len(new_ids) > snap.vectors.shape[0] or not self._writeable(snap.vectors):
                snap = self._grown(snap, max(2 * snap.vectors.shape[0], snap.n + len(new_ids), 64))
            lo, hi = snap.n, snap.n + len(new_ids)
            snap.vectors[lo:hi] = self._to_store(rows)
            snap.ids[lo:hi] = new_ids
            if scale is not None:
                snap.scale[lo:hi] = self._to_store(scale)
            if fine is not None:
                snap.refine[lo:hi] = fine
            alive = None if snap.alive is None else np.concatenate([snap.alive, np.ones(hi - lo, bool)])
            self._snap = _Snapshot(snap.vectors, snap.scale, snap.ids, alive, hi, snap.refine)
            for i, v in enumerate(new_ids.tolist()):
                self._row_of[v] = lo + i
            if len(new_ids):
                self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        return new_ids

    def remove(self, ids: Iterable[int] | np.ndarray) -> None:
        """Tombstone these ids (KeyError if one is not present; nothing changes then). Rows are
        compacted away once more than 20% of the index is tombstoned."""
        arr = np.atleast_1d(np.asarray(list(ids) if isinstance(ids, (set, frozenset)) else ids))
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"ids: expected integer ids, got dtype {arr.dtype}")
        with self._lock:
            keys = [int(v) for v in arr.tolist()]
            missing = [v for v in keys if v not in self._row_of]
            if missing:
                raise KeyError(f"ids: not in the index: {missing[:5]}")
            snap = self._snap
            alive = np.ones(snap.n, bool) if snap.alive is None else snap.alive.copy()
            for v in set(keys):
                alive[self._row_of.pop(v)] = False
            self._removed = int(snap.n - alive.sum())
            self._snap = _Snapshot(snap.vectors, snap.scale, snap.ids, alive, snap.n, snap.refine)
            if self._removed > _COMPACT_FRACTION * snap.n:
                self._compact()

    # ------------------------------------------------------------------ search
    def search(self, queries: Any, k: int, filter: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores float32 [Q, k], user ids int64 [Q, k]), best first, ties to the lower row
        (insertion order); padded with (-inf, -1). filter: ids (set, list, array) or a callable
        taking the int64 id array and returning a bool mask, evaluated once per search."""
        snap = self._snap  # one atomic read: the rest of the call sees a consistent index
        q = np.asarray(queries)
        if q.dtype.kind != "f":
            raise TypeError(f"queries: expected a float array, got dtype {q.dtype}")
        q = np.atleast_2d(q).astype(np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries: expected shape [Q, {self.dim}], got {tuple(np.shape(queries))}")
        if self.metric == "cosine":
            q = _unit_rows(q)
        ids = snap.ids[: snap.n]
        allowed = snap.alive
        if filter is not None:
            fmask = self._filter_mask(filter, ids)
            allowed = fmask if allowed is None else allowed & fmask
        vecs = snap.vectors[: snap.n]
        scale = None if snap.scale is None else snap.scale[: snap.n]
        if self._dev is not None:
            scores, rows = self._search_device(q, vecs, scale, k, allowed, snap)
        else:
            fine = {} if snap.refine is None else {"refine": snap.refine[: snap.n], "refine_factor": self.refine_factor}
            scores, rows = ops.topk_inner_product(q, vecs, k, corpus_scale=scale, allowed=allowed, **fine)
        out = np.full(rows.shape, -1, dtype=np.int64)
        hit = rows >= 0
        out[hit] = ids[rows[hit]]
        return scores, out

    # ------------------------------------------------------------------ files
    def save(self, path: str) -> None:
        """Write the live vectors atomically (temp file, fsync, rename)."""
        with self._lock:
            snap = self._snap
            keep = slice(0, snap.n) if snap.alive is None else np.flatnonzero(snap.alive)
            sections = {"ids": snap.ids[: snap.n][keep], "vectors": _host(snap.vectors[: snap.n])[keep]}
            if snap.scale is not None:
                sections["scale"] = _host(snap.scale[: snap.n])[keep]
            if snap.refine is not None:
                sections["refine"] = snap.refine[: snap.n][keep]
            _file.write(str(path), self.metric, self.dtype, self.dim, sections, self.refine)

    @classmethod
    def load(cls, path: str, mmap: bool = True, refine_factor: int = 4, device: Any = None) -> VectorIndex:
        """Open a saved index; mmap=True maps the file read-only (zero copy; the first add
        copies into memory). device: upload the vectors to that GPU (see the class doc).
        Corrupt, truncated or mismatched files raise ValueError."""
        metric, dtype, dim, sec = _file.read(str(path), mmap)
        ids = sec["ids"]
        row_of = {v: i for i, v in enumerate(ids.tolist())}
        if len(row_of) != ids.shape[0]:
            raise ValueError(f"{path}: corrupt index file (duplicate ids)")
        refine = sec.get("refine")
        index = cls(dim, metric, dtype, None if refine is None else refine.dtype.name, refine_factor, device)
        index._row_of = row_of
        index._next_id = int(ids.max()) + 1 if ids.size else 0
        vectors, scale = sec["vectors"], sec.get("scale")
        if index._dev is not None:
            vectors = index._to_store(np.ascontiguousarray(vectors))
            scale = None if scale is None else index._to_store(np.ascontiguousarray(scale))
        index._snap = _Snapshot(vectors, scale, ids, None, int(ids.shape[0]), refine)
        return index

    # ------------------------------------------------------------------ internals
    def _empty_snapshot(self, cap: int) -> _Snapshot:
        store = np.int8 if self.dtype == "int8" else np.dtype(self.dtype)
        scale = np.empty(cap, np.float32) if self.dtype == "int8" else None
        if self._dev is not None:
            import torch

            tdt = {"int8": torch.int8, "float16": torch.float16, "float32": torch.float32}[self.dtype]
            vecs = torch.empty((cap, self.dim), dtype=tdt, device=self._dev)
            tscale = torch.empty(cap, dtype=torch.float32, device=self._dev) if scale is not None else None
            fine = np.empty((cap, self.dim), self.refine) if self.refine is not None else None
            return _Snapshot(vecs, tscale, np.empty(cap, np.int64), None, 0, fine)
        fine = np.empty((cap, self.dim), self.refine) if self.refine is not None else None
        return _Snapshot(np.empty((cap, self.dim), store), scale, np.empty(cap, np.int64), None, 0, fine)

    def _grown(self, snap: _Snapshot, cap: int) -> _Snapshot:
        new = self._empty_snapshot(cap)
        new.vectors[: snap.n] = snap.vectors[: snap.n]
        new.ids[: snap.n] = snap.ids[: snap.n]
        if new.scale is not None:
            new.scale[: snap.n] = snap.scale[: snap.n]
        if new.refine is not None:
            new.refine[: snap.n] = snap.refine[: snap.n]
        return _Snapshot(new.vectors, new.scale, new.ids, snap.alive, snap.n, new.refine)

    def _compact(self) -> None:
        snap = self._snap
        keep = np.flatnonzero(snap.alive)
        new = self._empty_snapshot(max(64, 2 * keep.size))
        rows = keep if self._dev is None else self._to_store(keep.astype(np.int64))
        new.vectors[: keep.size] = snap.vectors[rows]
        new.ids[: keep.size] = snap.ids[keep]
        if new.scale is not None:
            new.scale[: keep.size] = snap.scale[rows]
        if new.refine is not None:
            new.refine[: keep.size] = snap.refine[keep]
        self._snap = _Snapshot(new.vectors, new.scale, new.ids, None, int(keep.size), new.refine)
        self._row_of = {v: i for i, v in enumerate(new.ids[: keep.size].tolist())}
        self._removed = 0

    # ------------------------------------------------------------------ device storage
    def _to_store(self, a: np.ndarray) -> Any:
        """Host rows in the storage's place: a tensor on the device, or `a` itself."""
        if self._dev is None:
            return a
        import torch

        # a writeable host copy first where `a` is a read-only memory map: torch.from_numpy shares
        # it, and a CPU device (the interpreter path) would keep that view and later write into it
        return torch.from_numpy(np.require(a, requirements=["C", "W"])).to(self._dev)

    @staticmethod
    def _writeable(a: Any) -> bool:
        return a.flags.writeable if isinstance(a, np.ndarray) else True

    def _search_device(self, q: np.ndarray, vecs: Any, scale: Any, k: int, allowed: Any,
                       snap: _Snapshot) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        backend = "auto" if self._dev.type == "cuda" else "triton"
        kk = k if snap.refine is None else int(min(k * self.refine_factor, max(snap.n, 1)))
        qd = self._to_store(q)
        scores, rows = ops.topk_inner_product(qd, vecs, kk, corpus_scale=scale, allowed=allowed, backend=backend)
        scores, rows = _host(scores), _host(rows)
        if snap.refine is not None:
            from ..ops.search import rescore

            scores, rows = rescore(q, rows, snap.refine[: snap.n], k, cosine=False)
        return scores, rows

    def _encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(stored rows, int8 scales or None, refine rows or None)."""
        x = x.astype(np.float32)
        if self.metric == "cosine":
            x = _unit_rows(x)
        fine = x.astype(self.refine) if self.refine is not None else None
        if self.dtype != "int8":
            return x.astype(self.dtype), None, fine
        amax = np.abs(x).max(axis=1)
        scale = np.where(amax > 0, amax / 127, 0).astype(np.float32)
        inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
        return np.clip(np.rint(x * inv[:, None]), -127, 127).astype(np.int8), scale, fine

    def _check_new_ids(self, ids: Any, m: int) -> np.ndarray:
        if ids is None:
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        arr = np.atleast_1d(np.asarray(ids))
        if arr.dtype.kind not in "iu" and arr.size:
            raise TypeError(f"ids: expected integer ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.shape != (m,):
            raise ValueError(f"ids: expected {m} ids, got shape {arr.shape}")
        if np.unique(arr).size != m:
            raise ValueError("ids: duplicate ids in this call")
        taken = [v for v in arr.tolist() if v in self._row_of]
        if taken:
            raise ValueError(f"ids: already in the index: {taken[:5]}")
        return arr

    @staticmethod
    def _filter_mask(filt: Any, ids: np.ndarray) -> np.ndarray:
        if callable(filt):
            mask = np.asarray(filt(ids))
            if mask.dtype != np.bool_ or mask.shape != ids.shape:
                raise TypeError(f"filter: the callable must return a bool array of shape {ids.shape}")
            return mask
        wanted = np.asarray(list(filt) if isinstance(filt, (set, frozenset)) else filt)
        if wanted.size and wanted.dtype.kind not in "iu":
            raise TypeError(f"filter: expected integer ids or a callable, got dtype {wanted.dtype}")
        return np.isin(ids, wanted.astype(np.int64))


def _torch_device(device: Any) -> Any:
    if device is None:
        return None
    import os

    import torch

    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError) as e:
        raise ValueError(f"device: expected None, 'cuda', 'cuda:N' or a torch.device, got {device!r}") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device: CUDA is not available on this machine")
        return torch.device("cuda", torch.cuda.current_device() if dev.index is None else dev.index)
    if dev.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return dev  # the Triton kernel on the interpreter (tests)
    raise ValueError(f"device: expected a CUDA device, got {device!r} (a CPU torch device only under "
                     f"TRITON_INTERPRET=1)")  # fmt: skip


def _host(a: Any) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else a.detach().cpu().numpy()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x, dtype=np.float64), where=n > 0).astype(np.float32)


