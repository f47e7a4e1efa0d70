"""Triton fused top-k inner-product / cosine search: dot products and selection in one pass,
never materialising the Q x N score matrix.

Grid (Q, splits): each program streams one query against a contiguous share of the corpus in
tiles of K_PAD rows, keeps its best K_PAD candidates as packed int64 keys and merges a tile
into them (bitonic sort of 2*K_PAD keys) only when the tile's best beats the current k-th key.
A small torch top-k over the splits' candidates finishes the job.

Key packing makes the order total and deterministic: the high 32 bits are the score's bits
mapped to an order-preserving signed int, the low 32 bits are (2^32 - 1 - id), so among equal
scores the lower id ranks first. Excluded rows (padding, `allowed` false, NaN score) get the
smallest int64 and come back as id -1 / score -inf.

Napkin math per query: N*D*b bytes of corpus, 2*N*D flops: bound by memory bandwidth for small
Q (each program re-reads its corpus share per query; large Q on a GPU is better served by the
CUDA kernel's query tiling).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_K = 256
_EXCLUDED = -(2**63)
# The kernel's copy: compiled Triton (unlike the interpreter) only reads module globals declared constexpr.
_EXCLUDED_KEY = tl.constexpr(_EXCLUDED)


@triton.jit
def _topk_kernel(
    Q, C, CSCALE, MASK, OUT, N, D, chunk, splits,
    HAS_CSCALE: tl.constexpr, HAS_MASK: tl.constexpr, COSINE: tl.constexpr,
    K: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    qi = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1).to(tl.int64)
    start = sp * chunk
    end = tl.minimum(start + chunk, N)
    best = tl.full([K], _EXCLUDED_KEY, tl.int64)
    kth = tl.min(best, axis=0)
    for n0 in range(start, end, K):
        rows = n0 + tl.arange(0, K)
        valid = rows < end
        acc = tl.zeros([K], tl.float32)
        sq = tl.zeros([K], tl.float32)
        for d0 in range(0, D, BD):
            dd = d0 + tl.arange(0, BD)
            dm = dd < D
            cm = valid[:, None] & dm[None, :]
            qv = tl.load(Q + qi * D + dd, mask=dm, other=0.0)
            cv = tl.load(C + rows[:, None] * D + dd[None, :], mask=cm, other=0).to(tl.float32)
            acc += tl.sum(cv * qv[None, :], axis=1)
            if COSINE:
                sq += tl.sum(cv * cv, axis=1)
        if HAS_CSCALE:
            acc = acc * tl.load(CSCALE + rows, mask=valid, other=0.0)
        if COSINE:
            norm = tl.sqrt(sq)
            acc = tl.where(norm > 0, acc / tl.where(norm > 0, norm, 1.0), 0.0)  # zero vectors score 0
        bits = acc.to(tl.int32, bitcast=True)
        bits = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
        keys = (bits.to(tl.int64) << 32) | (0xFFFFFFFF - rows.to(tl.int64))
        ok = valid & (acc == acc)
        if HAS_MASK:
            ok = ok & (tl.load(MASK + rows, mask=valid, other=0) != 0)
        keys = tl.where(ok, keys, _EXCLUDED_KEY)
        if tl.max(keys, axis=0) > kth:
            merged = tl.sort(tl.reshape(tl.join(best, keys), (2 * K,)), descending=True)
            best = tl.split(tl.permute(tl.reshape(merged, (2, K)), (1, 0)))[0]
            kth = tl.min(best, axis=0)
    tl.store(OUT + (qi * splits + sp) * K + tl.arange(0, K), best)


def decode_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed int64 keys -> (scores float32, ids int64); excluded keys -> (-inf, -1)."""
    excluded = keys == _EXCLUDED
    bits = (keys >> 32).to(torch.int32)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    scores = bits.view(torch.float32).clone()
    ids = 0xFFFFFFFF - (keys & 0xFFFFFFFF)
    scores[excluded] = float("-inf")
    ids[excluded] = -1
    return scores, ids


def topk(
    queries: torch.Tensor,
    corpus: torch.Tensor,
    k: int,
    *,
    corpus_scale: torch.Tensor | None = None,
    allowed: torch.Tensor | None = None,
    cosine: bool = False,
    splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores float32 [Q,k], ids int64 [Q,k]) sorted by score descending, ties by lower id.

    queries float32 [Q,D]; corpus float32/float16/int8 [N,D] (int8 rows are widened in registers
    and multiplied by the float32 corpus_scale [N]: scores are exact for the dequantized corpus,
    as on the CPU backend); allowed: bool [N] mask.
    """
    if queries.ndim != 2 or corpus.ndim != 2 or queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"queries/corpus: expected [Q,D] and [N,D], got {tuple(queries.shape)}, {tuple(corpus.shape)}")
    if queries.dtype != torch.float32:
        raise TypeError(f"queries: expected float32, got {queries.dtype}")
    if corpus.dtype not in (torch.float32, torch.float16, torch.int8):
        raise TypeError(f"corpus: expected float32, float16 or int8, got {corpus.dtype}")
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k: the Triton kernel supports 1 <= k <= {MAX_K}, got {k}")
    nq, d = queries.shape
    n = corpus.shape[0]
    dev = queries.device
    kpad = max(16, triton.next_power_of_2(k))
    if nq == 0 or n == 0:
        return torch.full((nq, k), float("-inf"), device=dev), torch.full((nq, k), -1, dtype=torch.int64, device=dev)
    q = queries.contiguous()
    if cosine:
        norms = q.norm(dim=1, keepdim=True)
        q = torch.where(norms > 0, q / norms, torch.zeros_like(q))
    if splits is None:
        want = 132 * 4 if dev.type == "cuda" else 2
        splits = max(1, min(triton.cdiv(n, kpad), want // max(nq, 1)))
    chunk = triton.cdiv(triton.cdiv(n, splits), kpad) * kpad
    splits = triton.cdiv(n, chunk)
    out = torch.empty((nq, splits * kpad), dtype=torch.int64, device=dev)
    c = corpus.contiguous()
    cs = corpus_scale.contiguous().to(torch.float32) if corpus_scale is not None else q
    mask = allowed.contiguous().to(torch.uint8) if allowed is not None else q
    _topk_kernel[(nq, splits)](
        q, c, cs, mask, out, n, d, chunk, splits,
        HAS_CSCALE=corpus_scale is not None, HAS_MASK=allowed is not None, COSINE=cosine,
        K=kpad, BD=min(64, triton.next_power_of_2(d)),
    )  # fmt: skip
    keys = out.topk(min(k, out.shape[1]), dim=1, sorted=True).values
    if keys.shape[1] < k:
        keys = torch.cat([keys, torch.full((nq, k - keys.shape[1]), _EXCLUDED, dtype=torch.int64, device=dev)], 1)
    return decode_keys(keys)
