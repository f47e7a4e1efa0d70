"""Embedding classifier for prompt injection / jailbreak: logistic regression over sentence embeddings
(infercore.Embedder, MiniLM by default), optionally concatenated with hashed character n-grams.

Weights ship in data/injection_clf.npz, written by train_classifier.py from the project's own training
set (training_data.py). A text is scored on each detection view of normalize.py that exists for it
(folded, leetspeak, split-word, base64/rot13 decoded): the score is the highest probability over views
and over sentence-aligned pieces of the text (see `windows`; at most `max_windows` are
scored: the first max_windows - 1 and the last; the pattern rules still see the whole text), so
obfuscation that the views undo does not hide an attack from the classifier either.

Why character n-grams: all-MiniLM-L6-v2 has an English WordPiece vocabulary; many kanji map to
[UNK] and Japanese sentences embed close to each other whatever they say. The hashed 1-3-gram block
gives the linear model Japanese (and obfuscation-agnostic) lexical evidence; the shipped weights say
which feature set they were trained with.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import check_path
from .normalize import Normalizer

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "data" / "injection_clf.npz"


def char_ngrams(text: str, dim: int, ns: tuple[int, ...] = (1, 2, 3), max_chars: int = 2000) -> np.ndarray:
    """Binary hashed character n-grams of `text` (spaces kept as one character), L2-normalized."""
    v = np.zeros(dim, np.float32)
    t = text[:max_chars]
    idx = {zlib.crc32(t[i:i + n].encode("utf-8", "surrogatepass")) % dim
           for n in ns for i in range(len(t) - n + 1)}
    if idx:
        v[list(idx)] = 1.0
        v /= np.sqrt(len(idx))
    return v


_SENT_END = re.compile(r"(?<=[.!?。！？\n])\s*")


def windows(text: str, window_chars: int, max_windows: int, max_piece_chars: int = 400) -> list[str]:
    """Sentence-aligned pieces: sentences shorter than `window_chars` are packed with their neighbours
    up to that length, longer ones stay whole up to `max_piece_chars` (then cut). More than
    `max_windows` pieces: the first max_windows - 1 and the last. Scoring sentences rather than
    long windows keeps an attack sentence from being diluted by the text around it (one benign
    sentence in front of an attack halves its probability) and matches the training prompts."""
    if len(text) <= window_chars:
        return [text]
    out: list[str] = []
    cur = ""
    for sent in _SENT_END.split(text):
        if not sent:
            continue
        while len(sent) > max_piece_chars:
            if cur:
                out.append(cur)
                cur = ""
            out.append(sent[:max_piece_chars])
            sent = sent[max_piece_chars:]
        if cur and len(cur) + 1 + len(sent) > window_chars:
            out.append(cur)
            cur = ""
        cur = f"{cur} {sent}" if cur else sent
    if cur:
        out.append(cur)
    if len(out) > max_windows:
        out = out[: max_windows - 1] + [out[-1]]
    return out


def check_texts(texts: Any, arg: str = "texts") -> list[str]:
    """`texts` (a list or tuple of str) as a list; a TypeError naming the argument otherwise (a bare
    str would be scored one character at a time)."""
    if not isinstance(texts, (list, tuple)):
        hint = " (wrap one text in a list)" if isinstance(texts, str) else ""
        raise TypeError(f"{arg}: expected a list of str, got {type(texts).__name__}{hint}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{arg}[{i}]: expected a str, got {type(t).__name__}")
    return list(texts)


def check_threshold(threshold: Any, arg: str = "threshold") -> float:
    """A classifier's probability threshold: a number in [0, 1] (NaN would never block)."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{arg}: expected a probability threshold in [0, 1], got {threshold!r}")
    return float(threshold)


def view_texts(text: str, normalizer: Normalizer) -> list[tuple[str, str]]:
    """(view name, text) for every detection view of `text` (folded first)."""
    return normalizer.views(text).spaced()


@dataclass
class FeatureSpec:
    embedder: str = "minilm"
    hash_dim: int = 0  # 0: embeddings only
    hash_weight: float = 1.0
    ngrams: tuple[int, ...] = (1, 2, 3)

    def to_meta(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "hash_dim": self.hash_dim, "hash_weight": self.hash_weight,
                "ngrams": list(self.ngrams)}

    @classmethod
    def from_meta(cls, m: dict[str, Any]) -> FeatureSpec:
        return cls(str(m["embedder"]), int(m["hash_dim"]), float(m["hash_weight"]), tuple(int(n) for n in m["ngrams"]))


def featurize(texts: list[str], embedder: Any, spec: FeatureSpec) -> np.ndarray:
    emb = np.asarray(embedder.encode(list(texts), show_progress_bar=False), np.float32).reshape(len(texts), -1)
    if not spec.hash_dim:
        return emb
    h = np.stack([char_ngrams(t, spec.hash_dim, spec.ngrams) for t in texts]) if texts else \
        np.zeros((0, spec.hash_dim), np.float32)
    return np.concatenate([emb, spec.hash_weight * h], axis=1)


@dataclass
class EmbeddingClassifier:
    """p(injection | text) = sigmoid(w . features + b); `threshold` was calibrated on benign text."""

    w: np.ndarray
    b: float
    threshold: float
    spec: FeatureSpec = field(default_factory=FeatureSpec)
    meta: dict[str, Any] = field(default_factory=dict)
    embedder: Any = None  # set by load(); an object with encode()
    window_chars: int = 80
    max_windows: int = 8

    @classmethod
    def load(cls, path: str | Path | None = None, embedder: Any = None) -> EmbeddingClassifier:
        from .embedding import resolve_embedder
        from .ngram_classifier import read_weights  # one reader for both models' .npz files

        w, b, thr, meta = read_weights(Path(check_path(path, "path")) if path is not None else DEFAULT_WEIGHTS)
        spec = FeatureSpec.from_meta(meta["features"])
        emb = resolve_embedder(embedder if embedder is not None else spec.embedder)
        dim = int(emb.get_sentence_embedding_dimension()) + spec.hash_dim
        if w.shape != (dim,):
            raise ValueError(f"classifier: weights have shape {w.shape}, the features have {dim} dimensions "
                             f"(trained with another embedder?)")
        return cls(w, b, thr, spec, meta, emb)

    def save(self, path: str | Path) -> None:
        from .ngram_classifier import write_weights  # b and threshold as float64 (see there)

        write_weights(path, self.w, self.b, self.threshold, dict(self.meta, features=self.spec.to_meta()))

    def proba_features(self, x: np.ndarray) -> np.ndarray:
        z = x @ self.w + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def proba(self, texts: list[str]) -> np.ndarray:
        """Probability per text (no views, no windows): what the model was trained on."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros(0, np.float32)
        return self.proba_features(featurize(texts, self.embedder, self.spec))

    def score(self, text: str, normalizer: Normalizer) -> tuple[float, str]:
        """Highest probability over the views and windows of `text`, and the view it came from."""
        items: list[tuple[str, str]] = []
        for name, view in view_texts(text, normalizer):
            items += [(name, w) for w in windows(view, self.window_chars, self.max_windows) if w.strip()]
        if not items:
            return 0.0, "folded"
        p = self.proba([t for _, t in items])
        i = int(np.argmax(p))
        return float(p[i]), items[i][0]
