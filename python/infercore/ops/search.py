"""Exact top-k search: topk_inner_product and topk_cosine over a float32, float16 or int8 corpus.

The CPU kernel is fused (see csrc/cpu/topk_impl.h): it never builds the Q x N score matrix, and
`allowed` is applied inside the scan, so k results come back whenever k allowed rows exist.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any

import numpy as np

from .._native import _C, cuda_module
from .._system import available_memory_bytes
from . import _arrays as A
from . import reference

_QUERY_DTYPES = ("float32", "float16", "bfloat16")
_CORPUS_DTYPES = ("float32", "float16", "int8")
_CTYPE_CODE = {"float32": 0, "float16": 1, "int8": 2}
# Soft bound on the CUDA kernel's workspace (candidate lists + merge buffers); above it the
# queries are searched in groups. Never Q x N: see csrc/cuda/topk.cu.
CUDA_MAX_WORKSPACE = 2 << 30


def topk_inner_product(
    queries: Any,
    corpus: Any,
    k: int,
    *,
    corpus_scale: Any = None,
    allowed: Any = None,
    backend: str = "auto",
    refine: Any = None,
    refine_factor: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the k corpus rows with the largest inner product.

    queries: [Q, d] or [d] (treated as Q = 1; the result is still [1, k]); float32, float16 or
      bfloat16 (computed in float32); must be finite (NaN/Inf raise ValueError).
    corpus: [N, d] float32, float16 or int8. An int8 corpus needs corpus_scale (float32 [N],
      row i is corpus[i] * corpus_scale[i]). With fewer than 16 queries the int8 scan quantises
      each query to int8 on the fly (symmetric, max|q|/127; integer dot products) and keeps a
      shortlist of 2k + 16 rows, which is re-scored with the float32 query; from 16 queries on,
      rows are widened to float32 inside the cache-resident block. Either way the returned
      scores are the float32 query against the exact int8 rows (accumulated in float64). The
      int8 scan can, rarely, drop a row whose true score ties or nearly ties the k-th one.
    allowed: None, a bool mask [N], or integer ids (any order, duplicates ignored): only those
      rows are candidates.
    Returns numpy (scores float32 [Q, k], ids int64 [Q, k]): each row sorted by score descending,
    ties to the lower id; places beyond the number of candidates hold (-inf, -1). Rows whose
    score is NaN (corpus rows with NaN/Inf) are never returned.
    backend: "auto" | "cpu" | "reference" (float64 numpy) | "cuda" (fused CUDA kernel, any k: CUDA
    torch tensors or CuPy arrays, launched on the current stream; auto picks it for device arrays
    when infercore was built with CUDA) | "triton" (fused Triton kernel, k <= 256: CUDA torch
    tensors, or CPU tensors under TRITON_INTERPRET=1; auto's choice when _C_cuda is missing).
    numpy arrays and torch tensors are accepted; non-contiguous inputs are copied. The CPU backend
    returns numpy; cuda and triton return the queries' array type.
    refine: None, or the corpus at higher precision (float32/float16 [N, d], host; e.g. kept on
      disk and memory-mapped, as FAISS's IndexRefineFlat does): the scan keeps k * refine_factor
      candidates, which are re-scored exactly against their `refine` rows (float64 accumulation),
      and the best k of those are returned with those scores. It recovers the recall a quantized
      corpus loses (int8 rounding can swap near-ties with the true top-k) at the cost of reading
      k * refine_factor rows per query. CPU and reference backends.
    """
    return _topk(False, queries, corpus, k, corpus_scale, allowed, backend, refine, refine_factor)


def topk_cosine(
    queries: Any, corpus: Any, k: int, *, allowed: Any = None, backend: str = "auto", refine: Any = None,
    refine_factor: int = 4,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Like topk_inner_product with cosine similarity <q, c> / (|q| |c|).

    A zero query or zero corpus row has similarity 0 with everything (not NaN). Corpus norms are
    computed inside the scan, block by block while the block is loaded into L2 (no extra pass over
    memory, no stored norms). An int8 corpus needs no scale here (cosine ignores a row's scale).
    refine: as in topk_inner_product (cosines re-scored on the `refine` rows).
    """
    return _topk(True, queries, corpus, k, None, allowed, backend, refine, refine_factor)


def _topk(cosine: bool, queries: Any, corpus: Any, k: Any, corpus_scale: Any, allowed: Any, backend: Any,
          refine: Any = None, refine_factor: Any = 4):  # fmt: skip
    backend = A.check_backend(backend)
    k = _check_k(k)
    if refine is not None:
        return _topk_refined(cosine, queries, corpus, k, corpus_scale, allowed, backend, refine, refine_factor)
    queries = A.as_array(queries, "queries")
    corpus = A.as_array(corpus, "corpus")
    on_device = [name for name, x in (("queries", queries), ("corpus", corpus)) if A.is_device_array(x)]
    if backend == "cuda" or (backend == "auto" and on_device and _cuda_topk_built()):
        return _topk_cuda(cosine, queries, corpus, k, corpus_scale, allowed)
    if backend == "triton" or (backend == "auto" and on_device):
        return _topk_triton(cosine, queries, corpus, k, corpus_scale, allowed)
    if on_device:
        raise ValueError(f"{on_device[0]}: backend={backend!r} needs a host array; copy it to the host first")
    q = _queries(queries)
    c = _corpus(corpus)
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"queries: expected rows of length {c.shape[1]} (the corpus dim), got {q.shape[1]}")
    if not np.isfinite(q).all():
        raise ValueError("queries: contains NaN or Inf")
    scale = _scale(corpus_scale, c) if not cosine else None
    if not cosine and c.dtype == np.int8 and scale is None:
        raise ValueError("corpus_scale: required for an int8 corpus (float32 [N], symmetric per-row scale)")
    mask, ids = _allowed(allowed, c.shape[0])

    if backend == "reference":
        filt = mask if mask is not None else ids
        if cosine:
            s, i = _result_fits(k, q.shape[0], c.shape[0], lambda: reference.topk_cosine(q, c, k, allowed=filt))
        else:
            s, i = _result_fits(k, q.shape[0], c.shape[0],
                                lambda: reference.topk_inner_product(q, c, k, corpus_scale=scale, allowed=filt))
        return s.astype(np.float32), i
    return _result_fits(k, q.shape[0], c.shape[0], lambda: _C.topk(q, c, k, scale, mask, ids, cosine))


def _topk_refined(cosine: bool, queries: Any, corpus: Any, k: int, corpus_scale: Any, allowed: Any, backend: str,
                  refine: Any, refine_factor: Any):  # fmt: skip
    """The scan's k * refine_factor candidates re-scored exactly on `refine` (see topk_inner_product)."""
    if backend not in ("auto", "cpu", "reference"):
        raise ValueError(f"refine: supported on the CPU and reference backends, got backend={backend!r}")
    if isinstance(refine_factor, bool) or not isinstance(refine_factor, numbers.Integral) or refine_factor < 1:
        raise ValueError(f"refine_factor: expected an int >= 1, got {refine_factor!r}")
    for name, x in (("queries", queries), ("corpus", corpus), ("refine", refine)):
        if A.is_device_array(x):
            raise ValueError(f"{name}: refine needs host arrays")
    r = A.as_array(refine, "refine")
    if A.dtype_name(r) not in ("float32", "float16"):
        raise TypeError(f"refine: expected dtype float32 or float16, got {A.dtype_name(r)}")
    r = _host_numpy(r)
    c_shape = tuple(int(n) for n in A.as_array(corpus, "corpus").shape)
    if r.ndim != 2 or tuple(r.shape) != c_shape:
        raise ValueError(f"refine: expected the corpus' shape {c_shape}, got {tuple(r.shape)}")
    q = _queries(A.as_array(queries, "queries"))
    if backend == "reference":  # the ideal the refinement approaches: exact search on `refine`
        mask, ids = _allowed(allowed, r.shape[0])
        filt = mask if mask is not None else ids
        ref = reference.topk_cosine if cosine else reference.topk_inner_product
        s, i = _result_fits(k, q.shape[0], r.shape[0], lambda: ref(q, r, k, allowed=filt))
        return s.astype(np.float32), i
    kk = int(min(k * int(refine_factor), max(r.shape[0], 1)))
    _, cand = _topk(cosine, q, corpus, kk, corpus_scale, allowed, "cpu")
    return _result_fits(k, q.shape[0], r.shape[0], lambda: rescore(q, cand, r, k, cosine))


def rescore(q: np.ndarray, cand: np.ndarray, r: np.ndarray, k: int, cosine: bool) -> tuple[np.ndarray, np.ndarray]:
    """The best k of each query's candidate rows `cand` (int64 [Q, m], -1 = none) by their exact
    score on `r` (float64 accumulation), ties to the lower id; (scores float32, ids int64) [Q, k].
    Native (csrc/cpu/topk_rescore.cpp), parallel over the queries; rows with NaN are dropped."""
    q = np.ascontiguousarray(q, dtype=np.float32)
    cand = np.ascontiguousarray(cand, dtype=np.int64)
    if r.dtype not in (np.float32, np.float16):
        raise TypeError(f"refine: expected dtype float32 or float16, got {r.dtype}")
    return _C.topk_rescore(q, cand.reshape(q.shape[0], -1), np.ascontiguousarray(r), int(k), bool(cosine))


def _topk_triton(cosine: bool, queries: Any, corpus: Any, k: int, corpus_scale: Any, allowed: Any):
    """Triton fused kernel (kernels/topk.py): CUDA torch tensors, or CPU tensors under
    TRITON_INTERPRET=1. Returns the caller's array type (torch stays torch, numpy stays numpy)."""
    import torch

    from ..kernels import topk as tk

    if k > tk.MAX_K:
        raise ValueError(f"k: the Triton kernel supports k <= {tk.MAX_K}, got {k}; use backend='cpu'")
    like = queries
    for name, x in (("queries", queries), ("corpus", corpus)):
        if not (A.is_torch(x) or isinstance(x, np.ndarray)):
            raise TypeError(f"{name}: backend='triton' takes torch tensors or numpy arrays, got {A.describe(x)}")
    qt = A.to_torch(queries)
    if qt.ndim == 1:
        qt = qt.reshape(1, -1)
    if A.dtype_name(qt) not in _QUERY_DTYPES:
        raise TypeError(f"queries: expected dtype float32, float16 or bfloat16, got {A.dtype_name(qt)}")
    qt = qt.float()
    ct = A.to_torch_for_triton(corpus)  # host arrays go to the GPU where there is one
    dev = ct.device
    if A.dtype_name(ct) not in _CORPUS_DTYPES:
        raise TypeError(f"corpus: expected dtype float32, float16 or int8, got {A.dtype_name(ct)}")
    if ct.ndim != 2 or qt.shape[1] != ct.shape[1]:
        raise ValueError(f"queries/corpus: expected [Q, d] and [N, d], got {tuple(qt.shape)}, {tuple(ct.shape)}")
    if not torch.isfinite(qt).all():
        raise ValueError("queries: contains NaN or Inf")
    scale = None
    if not cosine and ct.dtype == torch.int8:
        if corpus_scale is None:
            raise ValueError("corpus_scale: required for an int8 corpus (float32 [N], symmetric per-row scale)")
        scale = A.to_torch(corpus_scale).float().to(dev)
        if tuple(scale.shape) != (ct.shape[0],):
            raise ValueError(f"corpus_scale: expected shape ({ct.shape[0]},), got {tuple(scale.shape)}")
    elif corpus_scale is not None and not cosine:
        raise ValueError(f"corpus_scale: only valid with an int8 corpus, the corpus is {A.dtype_name(ct)}")
    mask_t = None
    if allowed is not None:
        host = allowed.detach().cpu().numpy() if A.is_torch(allowed) else allowed
        mask, ids = _allowed(host, ct.shape[0])
        if ids is not None:
            mask = np.zeros(ct.shape[0], dtype=np.bool_)
            mask[ids] = True
        mask_t = torch.from_numpy(mask).to(dev)
    scores, ids_t = tk.topk(qt.to(dev), ct, k, corpus_scale=scale, allowed=mask_t, cosine=cosine)
    if A.is_torch(like):  # back where the queries were (host tensors ran on the GPU)
        return scores.to(like.device), ids_t.to(like.device)
    return scores.cpu().numpy(), ids_t.cpu().numpy()


def _cuda_topk_built() -> bool:
    mod = cuda_module()
    return mod is not None and hasattr(mod, "topk")


def _topk_cuda(cosine: bool, queries: Any, corpus: Any, k: int, corpus_scale: Any, allowed: Any):
    """Fused CUDA kernel (csrc/cuda/topk.cu) on the corpus's device and the current stream
    (torch's, or CuPy's for CuPy arrays). Host queries are copied to the corpus's device.
    Returns the queries' array type (torch / CuPy stay on the device, numpy comes back)."""
    if not A.is_device_array(corpus):
        raise ValueError(f"corpus: backend='cuda' needs a CuPy array or CUDA torch tensor, got {A.describe(corpus)}")
    if not _cuda_topk_built():
        raise RuntimeError("backend='cuda': this infercore build has no CUDA top-k kernel (_C_cuda)")
    for name, x in (("queries", queries), ("corpus", corpus)):
        if not (A.is_torch(x) or A.is_cupy(x) or isinstance(x, np.ndarray)):
            raise TypeError(f"{name}: backend='cuda' takes torch tensors, CuPy or numpy arrays, got {A.describe(x)}")
    if A.is_device_array(queries):
        A.same_place(corpus, queries, "corpus", "queries")
    import torch

    stream_ctx = None
    if A.is_cupy(corpus) or A.is_cupy(queries):
        import cupy

        with (corpus if A.is_cupy(corpus) else queries).device:
            stream_ctx = torch.cuda.ExternalStream(cupy.cuda.get_current_stream().ptr)
    ct = A.to_torch(corpus)
    dev = ct.device
    cdt = A.dtype_name(ct)
    if cdt not in _CORPUS_DTYPES:
        raise TypeError(f"corpus: expected dtype float32, float16 or int8, got {cdt}")
    qt = A.to_torch(queries)
    if A.dtype_name(qt) not in _QUERY_DTYPES:
        raise TypeError(f"queries: expected dtype float32, float16 or bfloat16, got {A.dtype_name(qt)}")
    if qt.ndim == 1:
        qt = qt.reshape(1, -1)
    if qt.ndim != 2 or ct.ndim != 2 or qt.shape[1] != ct.shape[1]:
        raise ValueError(f"queries/corpus: expected [Q, d] and [N, d], got {tuple(qt.shape)}, {tuple(ct.shape)}")
    if qt.shape[1] == 0:
        raise ValueError("queries: the row length d must be >= 1")
    n, d = int(ct.shape[0]), int(ct.shape[1])
    on_stream = torch.cuda.stream(stream_ctx) if stream_ctx is not None else contextlib.nullcontext()
    with torch.cuda.device(dev), on_stream:
        # Host queries (an embedder's output, the usual RAG case) are checked on the host before
        # the upload; device queries on the device, with a host sync that costs ~60 us of idle
        # GPU per call on an H200 VM (scripts/gpu_diag_topk_host.py: 15% of a 1M-row Q=1 scan;
        # reading the flag after the launch instead did not help).
        on_host = qt.device.type == "cpu"
        if on_host and not bool(torch.isfinite(qt).all()):
            raise ValueError("queries: contains NaN or Inf")
        qt = qt.to(device=dev, dtype=torch.float32).contiguous()
        if not on_host and not bool(torch.isfinite(qt).all()):
            raise ValueError("queries: contains NaN or Inf")
        scale = None
        if not cosine and cdt == "int8":
            if corpus_scale is None:
                raise ValueError("corpus_scale: required for an int8 corpus (float32 [N], symmetric per-row scale)")
            scale = A.to_torch(A.as_array(corpus_scale, "corpus_scale"))
            if not scale.is_floating_point():
                raise TypeError(f"corpus_scale: expected a float array, got {A.dtype_name(scale)}")
            scale = scale.to(device=dev, dtype=torch.float32).contiguous()
            if tuple(scale.shape) != (n,):
                raise ValueError(f"corpus_scale: expected shape ({n},), got {tuple(scale.shape)}")
            if not bool(torch.isfinite(scale).all()):
                raise ValueError("corpus_scale: contains NaN or Inf")
        elif corpus_scale is not None and not cosine:
            raise ValueError(f"corpus_scale: only valid with an int8 corpus, the corpus is {cdt}")
        mask = _cuda_mask(allowed, n, dev)
        nq = int(qt.shape[0])
        mod = cuda_module()
        ws_bytes = int(mod.topk_workspace_bytes(nq, n, d, k, _CTYPE_CODE[cdt], CUDA_MAX_WORKSPACE))
        ws = torch.empty(max(ws_bytes, 1), dtype=torch.uint8, device=dev)
        scores = torch.empty((nq, k), dtype=torch.float32, device=dev)
        ids = torch.empty((nq, k), dtype=torch.int64, device=dev)
        stream = torch.cuda.current_stream(dev).cuda_stream
        mod.topk(
            qt.data_ptr(), nq, d, ct.data_ptr() if n else 0, n, _CTYPE_CODE[cdt],
            scale.data_ptr() if scale is not None else 0, mask.data_ptr() if mask is not None else 0,
            cosine, k, scores.data_ptr(), ids.data_ptr(), ws.data_ptr(), ws.numel(), CUDA_MAX_WORKSPACE, int(stream),
        )  # fmt: skip
    if A.is_torch(queries):
        return scores, ids
    if A.is_cupy(queries):
        return A.from_torch(scores, queries), A.from_torch(ids, queries)
    return scores.cpu().numpy(), ids.cpu().numpy()


def _cuda_mask(allowed: Any, n: int, dev: Any) -> Any:
    """`allowed` (host or device: bool mask [N] or integer ids) as a uint8 [N] mask on `dev`."""
    import torch

    if allowed is None:
        return None
    if A.is_device_array(allowed):
        a = A.to_torch(allowed)
        if a.ndim != 1:
            raise ValueError(f"allowed: expected a 1-D mask or id array, got shape {tuple(a.shape)}")
        if a.dtype == torch.bool:
            if a.shape[0] != n:
                raise ValueError(f"allowed: bool mask of length {a.shape[0]} for a corpus of {n} rows")
            return a.to(dev).to(torch.uint8).contiguous()
        if a.is_floating_point() or a.is_complex():
            raise TypeError(f"allowed: expected a bool mask or integer ids, got dtype {A.dtype_name(a)}")
        mask = torch.zeros(n, dtype=torch.uint8, device=dev)
        if a.numel():
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or hi >= n:
                raise ValueError(f"allowed: id {lo if lo < 0 else hi} out of range [0, {n})")
            mask[a.to(dev).long()] = 1
        return mask
    host_mask, host_ids = _allowed(allowed, n)
    if host_ids is not None:
        host_mask = np.zeros(n, dtype=np.bool_)
        host_mask[host_ids] = True
    return torch.from_numpy(np.ascontiguousarray(host_mask).view(np.uint8)).to(dev)


MAX_K = 2**31 - 1  # k per query (FAISS takes an int64 k too, but a result row past 2^31 is 24 GiB)


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k: expected an int, got {type(k).__name__}")
    if k < 1 or k > MAX_K:
        raise ValueError(f"k: expected 1 <= k <= {MAX_K}, got {k}")
    return int(k)


_CHECKED_RESULT_BYTES = 64 << 20


def _result_fits(k: int, rows: int, n: int, search: Any) -> Any:
    """search(), after checking that its [rows, k] result (float32 scores + int64 ids, padded past
    the n candidates) fits in the memory left: a ValueError naming k instead of numpy's MemoryError,
    or of the OOM killer when an over-committed result is filled."""
    need = rows * k * 12

    def too_big() -> ValueError:
        pad = f"; the corpus has {n} rows, so k > {n} only adds padding" if k > n else ""
        return ValueError(f"k: the result [{rows}, {k}] (float32 scores + int64 ids, {need / 2**30:.1f} GiB) does "
                          f"not fit in the memory left{pad}")

    if need > _CHECKED_RESULT_BYTES:  # reading /proc/meminfo costs ~30 us a call: only for large results
        avail = available_memory_bytes()
        if avail is not None and need > avail:
            raise too_big()
    try:
        return search()
    except MemoryError as e:
        raise too_big() from e


def _host_numpy(x: Any) -> np.ndarray:
    if A.is_torch(x):
        t = x.detach()
        if A.dtype_name(t) == "bfloat16":
            t = t.float()
        return t.contiguous().numpy()
    return np.asarray(x)


def _queries(x: Any) -> np.ndarray:
    dt = A.dtype_name(x)
    if dt not in _QUERY_DTYPES:
        hint = " (convert with .astype(np.float32))" if dt == "float64" else ""
        raise TypeError(f"queries: expected dtype float32, float16 or bfloat16, got {dt}{hint}")
    if x.ndim not in (1, 2):
        raise ValueError(f"queries: expected shape [Q, d] or [d], got {tuple(x.shape)}")
    q = _host_numpy(x)
    q = np.ascontiguousarray(q.reshape(1, -1) if q.ndim == 1 else q, dtype=np.float32)
    if q.shape[1] == 0:
        raise ValueError("queries: the row length d must be >= 1")
    return q


def _corpus(x: Any) -> np.ndarray:
    dt = A.dtype_name(x)
    if dt not in _CORPUS_DTYPES:
        raise TypeError(f"corpus: expected dtype float32, float16 or int8, got {dt}")
    if x.ndim != 2:
        raise ValueError(f"corpus: expected shape [N, d], got {tuple(x.shape)}")
    return np.ascontiguousarray(_host_numpy(x))


def _scale(scale: Any, c: np.ndarray) -> np.ndarray | None:
    if scale is None:
        return None
    if c.dtype != np.int8:
        raise ValueError(f"corpus_scale: only valid with an int8 corpus, the corpus is {c.dtype}")
    s = _host_numpy(A.as_array(scale, "corpus_scale"))
    if s.dtype.kind != "f":
        raise TypeError(f"corpus_scale: expected a float array, got {s.dtype}")
    if s.shape != (c.shape[0],):
        raise ValueError(f"corpus_scale: expected shape ({c.shape[0]},), got {tuple(s.shape)}")
    s = np.ascontiguousarray(s, dtype=np.float32)
    if not np.isfinite(s).all():
        raise ValueError("corpus_scale: contains NaN or Inf")
    return s


def _allowed(allowed: Any, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(bool mask [N], None) or (None, sorted unique int64 ids) or (None, None)."""
    if allowed is None:
        return None, None
    if A.is_device_array(allowed):
        raise ValueError("allowed: expected a host array")
    if isinstance(allowed, (set, frozenset)):
        allowed = sorted(allowed)
    is_array = A.is_torch(allowed) or isinstance(allowed, np.ndarray)
    a = _host_numpy(allowed) if is_array else np.asarray(allowed)
    if a.ndim != 1:
        raise ValueError(f"allowed: expected a 1-D mask or id array, got shape {tuple(a.shape)}")
    if a.dtype == np.bool_:
        if a.shape[0] != n:
            raise ValueError(f"allowed: bool mask of length {a.shape[0]} for a corpus of {n} rows")
        return np.ascontiguousarray(a), None
    if a.size == 0:
        return None, np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"allowed: expected a bool mask or integer ids, got dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= n:
        bad = lo if lo < 0 else hi
        raise ValueError(f"allowed: id {bad} out of range [0, {n})")
    return None, np.unique(a.astype(np.int64))
