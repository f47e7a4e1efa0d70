"""Diagnostic: does Triton's own tl.sort sort int64 keys correctly when compiled, and does the
top-k kernel's (hi, lo) int32 pair sort (kernels/topk.py) agree with torch.sort on the same data?

kernels/topk.py used to merge candidates with tl.sort over packed int64 keys; on an H200 with
Triton 3.6 a padding slot came back with a garbage high half (INT32_MIN ^ 0x1f) over a zero low
half. On 2026-11-26 every tl.sort case below sorted correctly there: the garbage came from the
xor_sum exchange inside the top-k kernel only (scripts/gpu_diag_topk.py). This
script sorts vectors of 32, 64 and 512 int64 keys (INT64_MIN mixed with random keys whose high and
low halves both vary, plus equal high halves and exact duplicates) descending three ways and
compares each with torch.sort:
  tl.sort       the vector loaded as is and sorted by tl.sort
  tl.sort(join) the vector built in the kernel as reshape(join(a, b)), the old top-k merge's layout
  tl.sort loop  the old top-k's merge loop on its own: best half/size keys kept across 4 tiles,
                a tile merged (tl.sort of best joined with the tile) only when its max beats the
                k-th key; compared with the top half of torch.sort over all 4 tiles
  pair sort     kernels.topk._sort_keys_desc (the kernel's bitonic network on int32 halves)
One line per case; the first mismatch of each prints the expected and got keys in hex. Then the
top-k kernel itself (pair sort) on the failing test's case (3 allowed ids, k=5) and on masked
random cases against a float64 brute force. Always exits 0 (it is a diagnostic). Uses CUDA when
there is one, else the Triton interpreter on CPU.

    PYTHONPATH=python python scripts/gpu_diag_sort.py     (from the repo root)
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is first imported

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

try:
    from infercore.kernels import topk as T
except Exception:  # no infercore package / native build: import the file itself
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import kernels.topk as T

INT64_MIN = -(2**63)
INT64_MIN_C = tl.constexpr(INT64_MIN)  # compiled Triton reads only constexpr globals


@triton.jit
def _tl_sort_kernel(X, Y, N: tl.constexpr):
    offs = tl.arange(0, N)
    tl.store(Y + offs, tl.sort(tl.load(X + offs), descending=True))


@triton.jit
def _tl_sort_join_kernel(X, Y, HALF: tl.constexpr):
    # the old top-k merge: two halves joined and reshaped into one vector, then tl.sort
    offs = tl.arange(0, HALF)
    a = tl.load(X + offs)
    b = tl.load(X + HALF + offs)
    merged = tl.sort(tl.reshape(tl.join(a, b), (2 * HALF,)), descending=True)
    tl.store(Y + tl.arange(0, 2 * HALF), merged)


@triton.jit
def _tl_sort_merge_loop_kernel(X, Y, TILES, K: tl.constexpr):
    # the old top-k kernel's selection loop, without the dot products
    best = tl.full([K], INT64_MIN_C, tl.int64)
    kth = tl.min(best, axis=0)
    for t in range(TILES):
        keys = tl.load(X + t * K + tl.arange(0, K))
        if tl.max(keys, axis=0) > kth:
            merged = tl.sort(tl.reshape(tl.join(best, keys), (2 * K,)), descending=True)
            best = tl.split(tl.permute(tl.reshape(merged, (2, K)), (1, 0)))[0]
            kth = tl.min(best, axis=0)
    tl.store(Y + tl.arange(0, K), best)


def _keys(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    keys = torch.randint(-(2**63), 2**63 - 1, (n,), dtype=torch.int64, generator=g)
    hi, low = keys >> 32, keys & 0xFFFFFFFF
    hi[: n // 4] = hi[0]  # a quarter share one high half
    low[:4] = torch.tensor([0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000])
    keys = (hi << 32) | low
    keys[n // 2 : n // 2 + n // 8] = keys[: n // 8].clone()  # exact duplicates
    keys[torch.rand(n, generator=g) < 0.4] = INT64_MIN  # excluded keys, interleaved
    return keys[torch.randperm(n, generator=g)]


def _compare(want: torch.Tensor, got: torch.Tensor) -> str:
    bad = (got.cpu() != want).nonzero().flatten()
    if bad.numel() == 0:
        return "ok"
    i = int(bad[0])
    w, x = int(want[i]) & (2**64 - 1), int(got[i]) & (2**64 - 1)
    return f"MISMATCH {bad.numel()} (first at {i}: want {w:#018x} got {x:#018x})"


def _run(fn) -> str:
    try:
        return fn()
    except Exception as e:  # report and go on
        traceback.print_exc()
        return f"ERROR {type(e).__name__}: {e}"[:200]


def _check_topk(nq: int, n: int, d: int, k: int, allowed_frac: float | None) -> str:
    """T.topk against a float64 brute force (score descending, lower id first, -1 padding)."""
    g = torch.Generator().manual_seed(n + k)
    q, c = torch.randn(nq, d, generator=g), torch.randn(n, d, generator=g)
    if allowed_frac is None:
        ok = torch.zeros(n, dtype=torch.bool)
        ok[[1, 5, 88]] = True
    else:
        ok = torch.rand(n, generator=g) < allowed_frac
    _, got = T.topk(q.to(DEVICE), c.to(DEVICE), k, allowed=ok.to(DEVICE))
    scores = (q.double() @ c.double().T).masked_fill(~ok, float("-inf"))
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]  # stable: lower id first
    want = torch.where(torch.gather(scores, 1, order) == float("-inf"), -1, order)
    bad = (got.cpu() != want).nonzero()
    if bad.numel() == 0:
        return "ok"
    r = int(bad[0, 0])
    return f"MISMATCH {bad.shape[0]} (row {r}: want {want[r].tolist()[:8]} got {got[r].cpu().tolist()[:8]})"


def main() -> None:
    t0 = time.perf_counter()
    dev_name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (TRITON_INTERPRET=1)"
    print(f"device {dev_name}; torch {torch.__version__}; triton {triton.__version__}", flush=True)
    for n in (32, 64, 512):
        for seed in (0, 1):
            keys = _keys(n, seed=n * 10 + seed)
            want = torch.sort(keys, descending=True).values
            x = keys.to(DEVICE)

            def tl_sort(x=x, want=want, n=n):
                y = torch.empty_like(x)
                _tl_sort_kernel[(1,)](x, y, N=n)
                return _compare(want, y)

            def tl_sort_join(x=x, want=want, n=n):
                y = torch.empty_like(x)
                _tl_sort_join_kernel[(1,)](x, y, HALF=n // 2)
                return _compare(want, y)

            def tl_sort_loop(n=n, seed=seed):
                tiles = torch.cat([_keys(n // 2, seed=n * 100 + seed * 10 + t) for t in range(4)])
                tiles[: n // 2] = INT64_MIN  # an all-excluded first tile
                y = torch.empty(n // 2, dtype=torch.int64, device=DEVICE)
                _tl_sort_merge_loop_kernel[(1,)](tiles.to(DEVICE), y, 4, K=n // 2)
                return _compare(torch.sort(tiles, descending=True).values[: n // 2], y)

            def pair_sort(x=x, want=want):
                return _compare(want, T._sort_keys_desc(x))

            print(
                f"size {n:4d} seed {seed}: tl.sort {_run(tl_sort)} | tl.sort(join) {_run(tl_sort_join)} | "
                f"tl.sort loop {_run(tl_sort_loop)} | pair sort {_run(pair_sort)}",
                flush=True,
            )
    for name, nq, n, d, k, allowed_frac in (
        ("3 allowed ids", 3, 90, 24, 5, None),
        ("10% allowed", 2, 1000, 16, 17, 0.1),
        ("50% allowed", 2, 400, 16, 100, 0.5),
    ):
        print(f"topk kernel, {name}, k={k}: {_run(lambda a=(nq, n, d, k, allowed_frac): _check_topk(*a))}", flush=True)
    print(f"done in {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a diagnostic always exits 0
        traceback.print_exc()
    sys.exit(0)
