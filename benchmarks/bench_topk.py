"""Fused top-k inner-product search vs numpy (matmul + argpartition + sort) and FAISS
IndexFlatIP, same threads, same run.

Bytes per call = corpus bytes read once (the queries and outputs are small); flops = 2*Q*N*d.
Q = 1 is bound by memory bandwidth (compare GB/s with the harness's read probe); large Q is bound
by the FMA units. float16 and int8 corpora report recall@k against exact float32 search
(numpy float64-accumulated scores on the float32 corpus) in `extra`, and their speed-up over our
float32 case of the same shape. The data is Gaussian: the hardest case for recall (top scores
are packed closely), real embeddings separate better. int8 also reports recall_deq, against exact
search on the dequantised corpus: what any exact int8 search could reach; the gap between the two
recalls is the corpus quantisation itself.
"""

from __future__ import annotations

import numpy as np

import infercore
from infercore import ops
from infercore.bench import Case

D = 384
K_VALUES = (10, 100)
Q_VALUES = (1, 16, 256)


def _faiss_or_none():
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(infercore.get_num_threads())
    return faiss


def _numpy_topk(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = q @ c.T
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    return np.take_along_axis(ps, order, axis=1), np.take_along_axis(part, order, axis=1)


def _exact_ids(q: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """Exact float32-corpus top-k ids, scores accumulated in float64 (chunked over the corpus)."""
    best_s = np.full((q.shape[0], 0), -np.inf)
    best_i = np.zeros((q.shape[0], 0), np.int64)
    q64 = q.astype(np.float64)
    for lo in range(0, c.shape[0], 100_000):
        s = q64 @ c[lo : lo + 100_000].astype(np.float64).T
        s_all = np.concatenate([best_s, s], axis=1)
        i_all = np.concatenate([best_i, np.broadcast_to(np.arange(lo, lo + s.shape[1]), s.shape)], axis=1)
        top = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s_all, top, 1), np.take_along_axis(i_all, top, 1)
    return best_i


def _recall(ids: np.ndarray, exact: np.ndarray) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(ids, exact, strict=True)]))


def cases(quick: bool) -> list[Case]:
    n = 200_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    c32 = rng.standard_normal((n, D), dtype=np.float32)
    c16 = c32.astype(np.float16)
    scale = (np.abs(c32).max(axis=1) / 127).astype(np.float32)
    c8 = np.clip(np.rint(c32 / scale[:, None]), -127, 127).astype(np.int8)
    deq = c8.astype(np.float32) * scale[:, None]
    queries = rng.standard_normal((max(Q_VALUES), D), dtype=np.float32)
    faiss = _faiss_or_none()
    index = None
    if faiss is not None:
        index = faiss.IndexFlatIP(D)
        index.add(c32)

    out: list[Case] = []
    for nq in Q_VALUES:
        q = np.ascontiguousarray(queries[:nq])
        for k in K_VALUES:
            shape = f"N{n}xd{D} Q{nq} k{k}"
            flops = 2.0 * nq * n * D
            exact_cache: dict[str, np.ndarray] = {}

            def exact(q=q, k=k, cache=exact_cache, corpus="f32") -> np.ndarray:
                if corpus not in cache:
                    cache[corpus] = _exact_ids(q, c32 if corpus == "f32" else deq, k)
                return cache[corpus]

            ours = {
                "float32": lambda q=q, k=k: ops.topk_inner_product(q, c32, k),
                "float16": lambda q=q, k=k: ops.topk_inner_product(q, c16, k),
                "int8": lambda q=q, k=k: ops.topk_inner_product(q, c8, k, corpus_scale=scale),
            }
            for dtype, fn in ours.items():
                extra: dict = {}

                def setup(fn=fn, extra=extra, dtype=dtype, exact=exact) -> None:
                    if dtype != "float32" and "recall" not in extra:
                        ids = fn()[1]
                        extra["recall"] = round(_recall(ids, exact()), 5)
                        if dtype == "int8":
                            extra["recall_deq"] = round(_recall(ids, exact(corpus="deq")), 5)

                nbytes = {"float32": c32.nbytes, "float16": c16.nbytes, "int8": c8.nbytes + scale.nbytes}[dtype]
                out.append(
                    Case("topk", "topk_inner_product", shape, dtype, "infercore", fn,
                         bytes=nbytes, flops=flops, setup=setup, extra=extra)
                )
            out.append(
                Case("topk", "topk_inner_product", shape, "float32", "numpy",
                     lambda q=q, k=k: _numpy_topk(q, c32, k), bytes=c32.nbytes, flops=flops)
            )
            if index is not None:
                out.append(
                    Case("topk", "topk_inner_product", shape, "float32", "faiss",
                         lambda q=q, k=k: index.search(q, k), bytes=c32.nbytes, flops=flops)
                )
    return out
