"""Triton fused top-k inner-product / cosine search: dot products and selection in one pass,
never materialising the Q x N score matrix.

Grid (Q, splits): each program streams one query against a contiguous share of the corpus in
tiles of K_PAD rows, keeps its best K_PAD candidates and merges a tile into them (bitonic sort of
2*K_PAD candidates) only when the tile's best could beat the current k-th candidate. A small torch
top-k over the splits' candidates finishes the job.

A candidate is a pair of int32 halves compared lexicographically (both signed): hi is the score's
bits mapped to an order-preserving signed int, lo is 2^31 - 1 - id, so among equal scores the lower
id ranks first. Excluded rows (padding, `allowed` false, NaN score) are (INT32_MIN, INT32_MIN) and
come back as id -1 / score -inf. The kernel sorts the two halves with its own bitonic network
(`_pair_sort_desc`) built on max/min reductions instead of `tl.sort` on packed int64 keys: compiled
Triton's sort fetches each element's partner with `xor_sum`, and inside this kernel on an H200
(Triton 3.6) that xor came back non-zero for two equal excluded keys, so a padding slot returned
as a key with a garbage high half and a zero low half (id 4294967295). tl.sort alone on loaded
vectors sorted correctly there; the garbage showed only in this kernel (the diagnostics that
dumped each stage are in git history: 7bacf19, scripts/gpu_diag_{sort,topk}.py). The host packs
a pair into the int64 key (hi << 32) | (lo + 2^31) (same order, the low half is 2^32 - 1 - id;
excluded = INT64_MIN), so `decode_keys` and the final top-k work on int64 keys as before.

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
_EXCLUDED_HALF = -(2**31)
# The kernel's copy: compiled Triton (unlike the interpreter) only reads module globals declared constexpr.
_EXCLUDED_PAIR_HALF = tl.constexpr(_EXCLUDED_HALF)
_MAX_PAIR_HALF = tl.constexpr(2**31 - 1)


# --- bitonic sort over (hi, lo) int32 pairs ------------------------------------------------------
# Same network as triton.language.standard.sort_impl (hypercube layout, one compare-exchange per
# axis of size 2), over a pair of int32 tensors and with max/min reductions in place of the
# partner-by-xor_sum exchange (see the module docstring for what the GPU showed).


@triton.jit
def _pair_compare_swap(hi, lo, pos, flip, axis_bit: tl.constexpr, n_dims: tl.constexpr):
    """One compare-exchange step between elements whose indices differ in bit `axis_bit`.

    The two elements of each size-2 hypercube axis are ordered lexicographically (hi, then lo,
    both signed); the element whose position wants the larger one (`flip` ^ its bit: 1 = larger)
    takes (max hi, the largest lo among those holding it), the other (min hi, smallest such lo).
    Only max/min reductions are used: they are idempotent, so they stay right however a layout
    replicates elements across threads (Triton's xor_sum exchange did not: module docstring).
    """
    axis: tl.constexpr = n_dims - 1 - axis_bit
    hi_max = tl.max(hi, axis=axis, keep_dims=True)
    hi_min = tl.min(hi, axis=axis, keep_dims=True)
    lo_max = tl.max(tl.where(hi == hi_max, lo, _EXCLUDED_PAIR_HALF), axis=axis, keep_dims=True)
    lo_min = tl.min(tl.where(hi == hi_min, lo, _MAX_PAIR_HALF), axis=axis, keep_dims=True)
    wants_max = (flip ^ ((pos >> axis_bit) & 1)) != 0
    return tl.where(wants_max, hi_max, hi_min), tl.where(wants_max, lo_max, lo_min)


@triton.jit
def _pair_bitonic_merge(hi, lo, pos, stage: tl.constexpr, order: tl.constexpr, n_dims: tl.constexpr):
    """Merges bitonic runs of 2**stage elements; order 0 ascending, 1 descending, 2 alternating
    by blocks of 2**stage (the direction the next stage needs)."""
    if order == 2:
        flip = (pos >> stage) & 1
    else:
        flip = order
    for s in tl.static_range(stage):
        hi, lo = _pair_compare_swap(hi, lo, pos, flip, stage - 1 - s, n_dims)
    return hi, lo


@triton.jit
def _pair_sort_desc(hi, lo, LOG_N: tl.constexpr):
    """Sorts 1-D int32 tensors (hi, lo) of 2**LOG_N elements (LOG_N >= 1) together, descending by
    (hi, lo) lexicographically; returns the sorted (hi, lo)."""
    cube_hi = tl.reshape(hi, [2] * LOG_N)
    cube_lo = tl.reshape(lo, [2] * LOG_N)
    # Bit j of the flat index is the coordinate on axis LOG_N - 1 - j. Taken from a full-size index
    # rather than Triton's reshaped arange(0, 2) indicator, which Triton 3.6's layout pass
    # (RemoveLayoutConversions) failed to compile inside the top-k kernel's loop.
    pos = tl.reshape(tl.arange(0, 2**LOG_N), [2] * LOG_N)
    for stage in tl.static_range(1, LOG_N + 1):
        # alternating directions until the last stage, which merges the whole vector descending
        cube_hi, cube_lo = _pair_bitonic_merge(cube_hi, cube_lo, pos, stage, 2 if stage < LOG_N else 1, LOG_N)
    return tl.reshape(cube_hi, hi.shape), tl.reshape(cube_lo, lo.shape)


@triton.jit
def _sort_pairs_kernel(HI, LO, LOG_N: tl.constexpr):
    """Test / diagnostic entry: sorts one vector of 2**LOG_N pairs in place."""
    offs = tl.arange(0, 2**LOG_N)
    hi, lo = _pair_sort_desc(tl.load(HI + offs), tl.load(LO + offs), LOG_N)
    tl.store(HI + offs, hi)
    tl.store(LO + offs, lo)


@triton.jit
def _topk_kernel(
    Q, C, CSCALE, MASK, OUT, N, D, chunk, splits,
    HAS_CSCALE: tl.constexpr, HAS_MASK: tl.constexpr, COSINE: tl.constexpr,
    K: tl.constexpr, LOG_2K: tl.constexpr, BD: tl.constexpr,
):  # fmt: skip
    qi = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1).to(tl.int64)
    start = sp * chunk
    end = tl.minimum(start + chunk, N)
    best_hi = tl.full([K], _EXCLUDED_PAIR_HALF, tl.int32)  # sorted descending by (hi, lo)
    best_lo = tl.full([K], _EXCLUDED_PAIR_HALF, tl.int32)
    kth_hi = tl.min(best_hi, axis=0)
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
        hi = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
        lo = (2147483647 - rows.to(tl.int64)).to(tl.int32)
        ok = valid & (acc == acc)
        if HAS_MASK:
            ok = ok & (tl.load(MASK + rows, mask=valid, other=0) != 0)
        hi = tl.where(ok, hi, _EXCLUDED_PAIR_HALF)
        lo = tl.where(ok, lo, _EXCLUDED_PAIR_HALF)
        # Conservative skip on hi alone (a valid hi is never INT32_MIN): merging is exact anyway.
        tile_hi = tl.max(hi, axis=0)
        if (tile_hi > kth_hi) | ((tile_hi == kth_hi) & (tile_hi != _EXCLUDED_PAIR_HALF)):
            m_hi, m_lo = _pair_sort_desc(
                tl.reshape(tl.join(best_hi, hi), (2 * K,)), tl.reshape(tl.join(best_lo, lo), (2 * K,)), LOG_2K
            )
            best_hi = tl.split(tl.permute(tl.reshape(m_hi, (2, K)), (1, 0)))[0]
            best_lo = tl.split(tl.permute(tl.reshape(m_lo, (2, K)), (1, 0)))[0]
            kth_hi = tl.min(best_hi, axis=0)
    base = OUT + ((qi * splits + sp) * K + tl.arange(0, K)) * 2
    tl.store(base, best_hi)
    tl.store(base + 1, best_lo)


def _split_keys(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 keys -> the kernel's (hi, lo) int32 halves, same order (inverse of `_join_keys`)."""
    return (keys >> 32).to(torch.int32), ((keys & 0xFFFFFFFF) - 2**31).to(torch.int32)


def _join_keys(hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
    """The kernel's (hi, lo) int32 halves -> int64 keys (hi << 32) | (lo + 2^31); excluded -> INT64_MIN."""
    return (hi.to(torch.int64) << 32) | (lo.to(torch.int64) + 2**31)


def _sort_keys_desc(keys: torch.Tensor) -> torch.Tensor:
    """Sorts a 1-D int64 key vector (power-of-two length >= 2) descending with the kernel's pair
    sort; for the tests."""
    n = keys.numel()
    if keys.ndim != 1 or n < 2 or n & (n - 1):
        raise ValueError(f"keys: expected a 1-D tensor of power-of-two length >= 2, got {tuple(keys.shape)}")
    hi, lo = (t.contiguous() for t in _split_keys(keys))
    _sort_pairs_kernel[(1,)](hi, lo, LOG_N=n.bit_length() - 1)
    return _join_keys(hi, lo)


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
    out = torch.empty((nq, splits * kpad, 2), dtype=torch.int32, device=dev)  # (hi, lo) per candidate
    c = corpus.contiguous()
    cs = corpus_scale.contiguous().to(torch.float32) if corpus_scale is not None else q
    mask = allowed.contiguous().to(torch.uint8) if allowed is not None else q
    _topk_kernel[(nq, splits)](
        q, c, cs, mask, out, n, d, chunk, splits,
        HAS_CSCALE=corpus_scale is not None, HAS_MASK=allowed is not None, COSINE=cosine,
        K=kpad, LOG_2K=(2 * kpad).bit_length() - 1, BD=min(64, triton.next_power_of_2(d)),
    )  # fmt: skip
    keys = _join_keys(out[..., 0], out[..., 1]).topk(min(k, out.shape[1]), dim=1, sorted=True).values
    if keys.shape[1] < k:
        keys = torch.cat([keys, torch.full((nq, k - keys.shape[1]), _EXCLUDED, dtype=torch.int64, device=dev)], 1)
    return decode_keys(keys)
