"""Fast injection classifier: logistic regression over hashed lexical features only (no model).

Features of a text (all binary, deduplicated per text, each block L2-normalized and weighted):
- character n-grams (default 1-4, spaces kept), hashed into `char_dim` buckets;
- word unigrams and bigrams (words: runs of letters/digits), hashed into `word_dim` buckets.

Hashing is vectorized numpy over the code points of every piece at once (a 64-bit polynomial
hash per n-gram, mixed, reduced mod the block size), so scoring all pieces x views of a
500-character text costs a few hundred microseconds: fast enough for every request, unlike MiniLM.
Scored exactly like classifier.EmbeddingClassifier: sentence-sized pieces (classifier.windows) of
each detection view (normalize.py), the maximum probability wins. Weights ship in
data/injection_clf_fast.npz, written by `python -m infercore.guardrails.train_classifier --features ngram`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import check_path
from .classifier import check_texts, check_threshold, view_texts, windows
from .normalize import Normalizer

FAST_WEIGHTS = Path(__file__).resolve().parent / "data" / "injection_clf_fast.npz"

_M = np.uint64(0x9E3779B97F4A7C15)  # odd multipliers for the polynomial hash and the mixer
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
# ASCII letters and digits are word characters, other ASCII is not; above ASCII everything but the
# general and CJK punctuation blocks is (the views are NFKC-folded: no full-width ASCII is left).
_ASCII_WORD = np.array([chr(c).isalnum() for c in range(128)])
_U64 = np.uint64


@dataclass
class NgramSpec:
    char_dim: int = 1 << 14
    word_dim: int = 1 << 13
    char_ns: tuple[int, ...] = (1, 2, 3, 4)
    word_ns: tuple[int, ...] = (1, 2)
    word_weight: float = 1.0
    max_chars: int = 2000  # per piece

    def __post_init__(self) -> None:
        if self.char_dim < 1 or self.word_dim < 0 or not self.char_ns or any(n < 1 for n in (*self.char_ns,
                                                                                           *self.word_ns)):
            raise ValueError(f"NgramSpec: expected char_dim >= 1, word_dim >= 0, n-gram sizes >= 1, got {self}")

    @property
    def dim(self) -> int:
        return self.char_dim + (self.word_dim if self.word_ns else 0)

    def to_meta(self) -> dict[str, Any]:
        return {"kind": "ngram", "char_dim": self.char_dim, "word_dim": self.word_dim, "char_ns": list(self.char_ns),
                "word_ns": list(self.word_ns), "word_weight": self.word_weight, "max_chars": self.max_chars}

    @classmethod
    def from_meta(cls, m: dict[str, Any]) -> NgramSpec:
        return cls(int(m["char_dim"]), int(m["word_dim"]), tuple(int(n) for n in m["char_ns"]),
                   tuple(int(n) for n in m["word_ns"]), float(m["word_weight"]), int(m["max_chars"]))


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads a polynomial hash over all 64 bits before the modulo."""
    h = h ^ (h >> _U64(30))
    h = h * _M2
    h = h ^ (h >> _U64(27))
    h = h * _M3
    return h ^ (h >> _U64(31))


def _ngram_hashes(codes: np.ndarray, seg: np.ndarray, sep: np.ndarray, ns: tuple[int, ...]) -> tuple[
        np.ndarray, np.ndarray]:
    """(row, hash) for every n-gram (n in ns) of `codes` that lies inside one row: seg[i] is the row
    of position i (cumulative count of separators), sep[i] marks separator positions."""
    rows, hashes = [], []
    n_codes = len(codes)
    for n in ns:
        if n_codes < n:
            continue
        m = n_codes - n + 1
        h = np.full(m, n, np.uint64) * _M
        for k in range(n):
            h = h * _M + codes[k:k + m]
        ok = ~sep[:m] & (seg[n - 1:] == seg[:m])
        rows.append(seg[:m][ok])
        hashes.append(h[ok])
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(rows), _mix(np.concatenate(hashes))


def _word_chars(codes: np.ndarray) -> np.ndarray:
    c = codes
    punct = ((c >= 0x2000) & (c <= 0x206F)) | ((c >= 0x3000) & (c <= 0x303F)) | ((c >= 0xFF00) & (c <= 0xFF65))
    return np.where(c < 128, _ASCII_WORD[np.minimum(c, 127).astype(np.intp)], ~punct & (c != 0xFFFD))


def _codes(pieces: list[str], max_chars: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Code points of the pieces joined by NUL separators (NUL inside a piece becomes a space)."""
    joined = "\0".join(p[:max_chars].replace("\0", " ") for p in pieces)
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.uint64)
    sep = codes == 0
    seg = np.cumsum(sep)
    return codes, seg, sep


def sparse_features(texts: list[str], spec: NgramSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO features (row, column, value) of `texts`: binary hashed n-grams, one entry per distinct
    (row, column), each block scaled to unit L2 norm (times word_weight for the word block)."""
    if not texts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    codes, seg, sep = _codes(texts, spec.max_chars)
    r, h = _ngram_hashes(codes, seg, sep, spec.char_ns)
    keys = [r.astype(np.int64) * spec.dim + (h % _U64(spec.char_dim)).astype(np.int64)]
    if spec.word_ns and spec.word_dim:
        is_word = _word_chars(codes)
        if is_word.any():
            # word spans: maximal runs of word characters (a separator is not one, so no run crosses rows)
            edge = np.diff(np.concatenate([[False], is_word, [False]]).astype(np.int8))
            starts = np.flatnonzero(edge == 1)
            ends = np.flatnonzero(edge == -1)
            lens = ends - starts
            idx = np.flatnonzero(is_word)
            pos = idx - np.repeat(starts, lens)
            wh = np.add.reduceat(codes[idx] * _powers(int(lens.max()))[pos], np.cumsum(lens) - lens)  # wraps: a hash
            wr, whh = _ngram_hashes(wh, seg[starts], np.zeros(len(wh), bool), spec.word_ns)
            keys.append(wr.astype(np.int64) * spec.dim + spec.char_dim
                        + (whh % _U64(spec.word_dim)).astype(np.int64))
    key = np.sort(np.concatenate(keys))
    if len(key) > 1:
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    rows = key // spec.dim
    cols = key % spec.dim
    is_w = cols >= spec.char_dim
    n_rows = len(texts)
    cnt_c = np.bincount(rows[~is_w], minlength=n_rows)
    cnt_w = np.bincount(rows[is_w], minlength=n_rows)
    val = np.where(is_w, spec.word_weight / np.sqrt(np.maximum(cnt_w[rows], 1)),
                   1.0 / np.sqrt(np.maximum(cnt_c[rows], 1))).astype(np.float32)
    return rows, cols, val


_POW_CACHE: list[np.ndarray] = [np.ones(1, np.uint64)]


def _powers(n: int) -> np.ndarray:
    p = _POW_CACHE[0]
    if len(p) < n:
        vals = [1]
        for _ in range(max(n, 2 * len(p)) - 1):
            vals.append(vals[-1] * int(_M) % (1 << 64))
        p = np.array(vals, np.uint64)
        _POW_CACHE[0] = p
    return p


def dense_features(texts: list[str], spec: NgramSpec) -> np.ndarray:
    """The same features as a dense (len(texts), spec.dim) float32 matrix (tests, small batches)."""
    rows, cols, val = sparse_features(texts, spec)
    x = np.zeros((len(texts), spec.dim), np.float32)
    x[rows, cols] = val
    return x


@dataclass
class NgramClassifier:
    """p(injection | text) = sigmoid(w . hashed_ngrams(text) + b); `threshold` was calibrated on
    benign text. Same interface as EmbeddingClassifier (load, save, proba, score, threshold)."""

    w: np.ndarray = field(repr=False)
    b: float
    threshold: float
    spec: NgramSpec = field(default_factory=NgramSpec)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    window_chars: int = 80
    max_windows: int = 8
    mode: str = "fast"

    @classmethod
    def load(cls, path: str | Path | None = None) -> NgramClassifier:
        p = Path(check_path(path, "path")) if path is not None else FAST_WEIGHTS
        w, b, thr, meta = read_weights(p)
        spec = NgramSpec.from_meta(meta["features"])
        if w.shape != (spec.dim,):
            raise ValueError(f"classifier: weights have shape {w.shape}, the features have {spec.dim} dimensions")
        return cls(w, b, thr, spec, meta)

    def save(self, path: str | Path) -> None:
        write_weights(path, self.w, self.b, self.threshold, dict(self.meta, features=self.spec.to_meta()))

    def logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        rows, cols, val = sparse_features(texts, self.spec)
        return np.bincount(rows, weights=self.w[cols] * val, minlength=len(texts)) + self.b

    def proba(self, texts: list[str]) -> np.ndarray:
        """Probability per text (no views, no windows): what the model was trained on."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros(0, np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(self.logits(texts), -50, 50)))

    def score(self, text: str, normalizer: Normalizer) -> tuple[float, str]:
        """Highest probability over the views and sentence pieces of `text`, and the view it came from."""
        first_view: dict[str, str] = {}  # piece -> the first view it appears in (views often share pieces)
        for name, view in view_texts(text, normalizer):
            for w in windows(view, self.window_chars, self.max_windows):
                if w.strip():
                    first_view.setdefault(w, name)
        if not first_view:
            return 0.0, "folded"
        pieces = list(first_view)
        p = self.proba(pieces)
        i = int(np.argmax(p))
        return float(p[i]), first_view[pieces[i]]


def read_weights(p: Path) -> tuple[np.ndarray, float, float, dict[str, Any]]:
    if not p.is_file():
        raise ValueError(f"classifier: weights file {str(p)!r} not found (run python -m "
                         f"infercore.guardrails.train_classifier)")
    try:
        with np.load(p, allow_pickle=False) as z:
            w, b, thr = z["w"].astype(np.float32), float(z["b"]), float(z["threshold"])
            meta = json.loads(str(z["meta"]))
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(f"classifier: {str(p)!r} is not a classifier weights file: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("features"), dict):
        raise ValueError(f"classifier: {str(p)!r} is not a classifier weights file: no feature spec")
    check_threshold(thr, f"classifier: {str(p)!r}: threshold")
    return w, b, thr, meta


def write_weights(path: str | Path, w: np.ndarray, b: float, threshold: float, meta: dict[str, Any]) -> None:
    # b and threshold stay float64: a threshold rounded to float32 can fall below the calibration
    # score it was set just above, and let that text through calibration
    np.savez_compressed(path, w=w.astype(np.float32), b=np.float64(b), threshold=np.float64(threshold),
                        meta=np.array(json.dumps(meta, sort_keys=True)))
