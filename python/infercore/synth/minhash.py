"""MinHash signatures and banded LSH for near-duplicate removal.

Two backends with the same shingles and the same decision rule:
  * "numpy" (default, no extra dependency): h_i(x) = ((a_i * x + b_i) mod (2^61 - 1)) mod 2^32 over
    32-bit shingle hashes, with a_i, b_i < 2^32 so the product never overflows uint64;
  * "datasketch" (pip install datasketch): its MinHash and MinHashLSH.
LSH only proposes candidates; a candidate is a duplicate when its Jaccard similarity to an earlier
kept text is >= threshold (exact Jaccard of the shingle sets by default, or the MinHash estimate).
Band and row counts minimize 0.05 * false-positive area + 0.95 * false-negative area of the
S-curve: recall first, since every candidate is verified (at 0.8 and 128 permutations: 16 bands of
8 rows; a pair at Jaccard 0.85 becomes a candidate with probability 0.994).
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from functools import lru_cache

import numpy as np

from .textstats import normalize

MERSENNE = np.uint64((1 << 61) - 1)
MAX32 = np.uint64((1 << 32) - 1)
BACKENDS = ("numpy", "datasketch")
MAX_K = 1 << 16  # longest shingle (chars or words): far past any useful k, refuses overflowed/garbage values
MAX_PERM = 1 << 14  # estimate std error <= 0.004 here; lsh_params grows ~ num_perm log num_perm (seconds at 2^14)


def check_k(k: object, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f"{name}: expected an int in [1, {MAX_K}], got {k!r}")
    return k


def check_num_perm(num_perm: object) -> int:
    if isinstance(num_perm, bool) or not isinstance(num_perm, int) or not 2 <= num_perm <= MAX_PERM:
        raise ValueError(f"num_perm: expected an int in [2, {MAX_PERM}], got {num_perm!r}")
    return num_perm


def shingles(text: str, k: int = 5, unit: str = "char") -> set[str]:
    """Character k-grams (default; works for Japanese too) or word k-grams of the normalized text."""
    check_k(k)
    t = normalize(text)
    if unit == "char":
        return {t[i:i + k] for i in range(len(t) - k + 1)} if len(t) >= k else ({t} if t else set())
    if unit == "word":
        w = t.split()
        return {" ".join(w[i:i + k]) for i in range(len(w) - k + 1)} if len(w) >= k else ({" ".join(w)} if w else set())
    raise ValueError(f"unit: expected 'char' or 'word', got {unit!r}")


def hash32(s: str) -> int:
    """CRC-32 of the UTF-8 bytes: stable across runs and platforms (unlike hash()), and fast; the
    (a x + b) mod p permutations do the mixing."""
    return zlib.crc32(s.encode("utf-8"))


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class MinHasher:
    """Signatures of num_perm uint64 values (< 2^32) from one seed."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        check_num_perm(num_perm)
        gen = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = gen.integers(1, 1 << 32, num_perm, dtype=np.uint64)
        self.b = gen.integers(0, 1 << 32, num_perm, dtype=np.uint64)

    def signature(self, shingle_set: set[str]) -> np.ndarray:
        if isinstance(shingle_set, (str, bytes)) or not isinstance(shingle_set, Collection):
            raise TypeError(f"shingle_set: expected a set of str, got {type(shingle_set).__name__}")
        if not shingle_set:
            return np.full(self.num_perm, MAX32, np.uint64)
        try:
            hv = np.fromiter((hash32(s) for s in shingle_set), np.uint64, len(shingle_set))
        except AttributeError:
            bad = next(s for s in shingle_set if not isinstance(s, str))
            raise TypeError(f"shingle_set: expected a set of str, got an item of type {type(bad).__name__}") from None
        return (((hv[:, None] * self.a + self.b) % MERSENNE) & MAX32).min(axis=0)


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    for name, sig in (("sig_a", sig_a), ("sig_b", sig_b)):
        if not isinstance(sig, np.ndarray):
            raise TypeError(f"{name}: expected a MinHasher signature (numpy array), got {type(sig).__name__}")
    if sig_a.shape != sig_b.shape:
        raise ValueError("signatures: expected the same num_perm")
    return float(np.mean(sig_a == sig_b))


def _area(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2)


@lru_cache(maxsize=64, typed=True)  # typed: 128.0 must not hit the cached 128
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.05, fn_weight: float = 0.95) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimizing the weighted error areas."""
    check_num_perm(num_perm)
    s_lo = np.linspace(0.0, threshold, 201)
    s_hi = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = _area(1 - (1 - s_lo ** r) ** b, s_lo)
            fn = _area((1 - s_hi ** r) ** b, s_hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


def _check(threshold: float, num_perm: int, backend: str, verify: str, k: int = 5, unit: str = "char") -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    check_num_perm(num_perm)
    check_k(k)
    if unit not in ("char", "word"):
        raise ValueError(f"unit: expected 'char' or 'word', got {unit!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if verify not in ("exact", "minhash"):
        raise ValueError(f"verify: expected 'exact' or 'minhash', got {verify!r}")


def near_duplicates(texts: Sequence[str], threshold: float = 0.8, *, num_perm: int = 128, k: int = 5,
                    unit: str = "char", seed: int = 1, backend: str = "numpy", verify: str = "exact",
                    progress: bool = False) -> list[int | None]:
    """For each text, the index of the earlier kept text it near-duplicates (similarity >= threshold),
    or None if it is kept. Greedy in input order: only kept texts enter the index."""
    _check(threshold, num_perm, backend, verify, k, unit)
    from .progress import Progress

    sets = [shingles(t, k, unit) for t in texts]
    out: list[int | None] = [None] * len(texts)
    bands, rows = lsh_params(float(threshold), num_perm)
    if backend == "datasketch":
        try:
            from datasketch import MinHash, MinHashLSH
        except ImportError as e:
            raise ImportError("backend='datasketch' needs datasketch (pip install 'infercore[synth]')") from e
        lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
        sigs_ds = []
        for s in sets:
            m = MinHash(num_perm=num_perm, seed=seed)
            m.update_batch([x.encode("utf-8") for x in sorted(s)])
            sigs_ds.append(m)
    else:
        hasher = MinHasher(num_perm, seed)
        sigs = [hasher.signature(s) for s in sets]
        buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]
    with Progress(len(texts), "near-dup", progress) as bar:
        for i in range(len(texts)):
            if backend == "datasketch":
                cands = sorted(lsh.query(sigs_ds[i]))
            else:
                keys = [sigs[i][j * rows:(j + 1) * rows].tobytes() for j in range(bands)]
                cands = sorted({c for j, key in enumerate(keys) for c in buckets[j].get(key, ())})
            best, best_sim = None, -1.0
            for c in cands:
                if verify == "exact":
                    sim = jaccard(sets[i], sets[c])
                elif backend == "datasketch":
                    sim = float(sigs_ds[i].jaccard(sigs_ds[c]))
                else:
                    sim = estimate_jaccard(sigs[i], sigs[c])
                if sim >= threshold and sim > best_sim:
                    best, best_sim = c, sim
            if best is not None:
                out[i] = best
            elif backend == "datasketch":
                lsh.insert(i, sigs_ds[i])
            else:
                for j, key in enumerate(keys):
                    buckets[j].setdefault(key, []).append(i)
            bar.update()
    return out
