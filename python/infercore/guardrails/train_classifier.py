"""Trains an injection classifier on data/injection_train.jsonl and writes its weights.

    python -m infercore.guardrails.train_classifier --features ngram          # fast: injection_clf_fast.npz
    python -m infercore.guardrails.train_classifier --features ngram+minilm   # accurate: injection_clf.npz
        [--hash-dim 4096] [--target-fpr 0.05] [--out PATH]

- ngram (ngram_classifier.NgramClassifier): hashed character 1-4-grams + word 1-2-grams only, no
  model; sparse features, so the regression runs over index arrays (np.bincount), in a second.
- ngram+minilm (classifier.EmbeddingClassifier): MiniLM embedding + hashed character 1-3-grams.

Deterministic: the training set is rebuilt from its seed only if missing, the logistic regression
starts from zeros and runs full-batch Adam for a fixed number of steps (no random sampling).

- Features per row: see classifier.featurize. A row is expanded into the detection views of
  normalize.py. An attack row contributes its most-decoded view (base64/rot13 decoded, else
  split-word, else leetspeak, else folded) and, when that differs, its folded view too only if it
  is a plain (unobfuscated) row; a benign row contributes every view as a negative, because at
  inference the score is the maximum over views and each must stay low.
- Loss: class-balanced logistic loss + L2 (`--l2`), bias unregularized.
- Threshold: on the benign calibration split (whole seed groups never trained on), the lowest
  threshold at which at most `--target-fpr` of the calibration texts score >= it (score = max over
  views, as at inference), and never below 0.5.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import training_data
from .classifier import DEFAULT_WEIGHTS, EmbeddingClassifier, FeatureSpec, featurize, view_texts
from .ngram_classifier import FAST_WEIGHTS, NgramClassifier, NgramSpec, sparse_features
from .normalize import Normalizer

FEATURES = ("ngram", "ngram+minilm")


def expand(rows: list[dict[str, Any]], normalizer: Normalizer) -> tuple[list[str], list[int], list[int]]:
    """(texts, labels, row index) after expanding rows into the views they train on."""
    texts: list[str] = []
    labels: list[int] = []
    owner: list[int] = []
    for i, r in enumerate(rows):
        views = [t for _, t in view_texts(str(r["text"]), normalizer) if t.strip()]
        if not views:
            continue
        if r["label"] == 1:
            chosen = [views[-1]]
            if r["variant"] == "plain" and views[0] != views[-1]:
                chosen.append(views[0])
        else:
            chosen = views
        for t in dict.fromkeys(chosen):
            texts.append(t)
            labels.append(int(r["label"]))
            owner.append(i)
    return texts, labels, owner


def fit_logreg(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 600, lr: float = 0.05) -> tuple[
        np.ndarray, float]:
    """Class-balanced L2 logistic regression by full-batch Adam (deterministic)."""
    n, d = x.shape
    pos = max(1, int(y.sum()))
    neg = max(1, n - pos)
    sw = np.where(y == 1, n / (2.0 * pos), n / (2.0 * neg)).astype(np.float64)
    w = np.zeros(d, np.float64)
    b = 0.0
    m = np.zeros(d + 1)
    v = np.zeros(d + 1)
    b1, b2, eps = 0.9, 0.999, 1e-8
    xd = x.astype(np.float64)
    for t in range(1, steps + 1):
        z = xd @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        g = sw * (p - y) / n
        grad = np.concatenate([xd.T @ g + l2 * w, [g.sum()]])
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        step = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        w -= step[:-1]
        b -= step[-1]
    return w.astype(np.float32), float(b)


def fit_logreg_sparse(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int], y: np.ndarray,
                      l2: float = 1e-3, steps: int = 600, lr: float = 0.05) -> tuple[np.ndarray, float]:
    """fit_logreg over a COO matrix (rows, cols, vals) of `shape`: the same loss and optimizer, the
    products done by np.bincount (deterministic: it sums in index order)."""
    n, d = shape
    pos = max(1, int(y.sum()))
    neg = max(1, n - pos)
    sw = np.where(y == 1, n / (2.0 * pos), n / (2.0 * neg)).astype(np.float64)
    vals = vals.astype(np.float64)
    w = np.zeros(d, np.float64)
    b = 0.0
    m = np.zeros(d + 1)
    v = np.zeros(d + 1)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        z = np.bincount(rows, weights=w[cols] * vals, minlength=n) + b
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        g = sw * (p - y) / n
        grad = np.concatenate([np.bincount(cols, weights=g[rows] * vals, minlength=d) + l2 * w, [g.sum()]])
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        step = lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        w -= step[:-1]
        b -= step[-1]
    return w.astype(np.float32), float(b)


def calibrate(scores: np.ndarray, target_fpr: float, floor: float = 0.5) -> float:
    """A threshold with mean(scores >= threshold) <= target_fpr, and at least `floor`: midway
    between the highest score that must stay below it and the next higher one, so a last-bit change
    in the embedder's arithmetic (another GEMM blocking, another ISA) cannot push a calibration text
    across (right above the score, one ulp of drift flipped three texts from 6/140 to 9/140)."""
    s = np.sort(np.asarray(scores, np.float64))[::-1]
    k = int(np.floor(target_fpr * len(s)))  # this many may score at or above the threshold
    if k >= len(s):
        return max(floor, float(s[-1]))
    thr = float(np.nextafter(s[k], np.inf))
    if k > 0 and s[k - 1] > thr:
        thr = float((s[k] + s[k - 1]) / 2)
    return max(floor, thr)


def _calibrate_and_describe(clf: Any, norm: Normalizer, prefix: str, digest: str, train_rows: list, calib_rows: list,
                            views: int, y: np.ndarray, train_acc: float, target_fpr: float, l2: float, steps: int,
                            log: Any) -> Any:
    """Shared by both models: threshold from the benign calibration split, metadata, one log line."""
    calib_scores = np.array([clf.score(str(r["text"]), norm)[0] for r in calib_rows])
    clf.threshold = calibrate(calib_scores, target_fpr)
    calib_fpr = float((calib_scores >= clf.threshold).mean())
    clf.meta = {"training_sha256": digest, "train_rows": len(train_rows), "train_views": views,
                "calib_rows": len(calib_rows), "target_fpr": target_fpr, "calib_fpr": calib_fpr,
                "train_accuracy": train_acc, "l2": l2, "steps": steps}
    log(f"{prefix}trained on {len(train_rows)} rows ({views} views, {int(y.sum())} positive), "
        f"train accuracy {train_acc:.3f}; threshold {clf.threshold:.3f} -> calibration FPR {calib_fpr:.3f} "
        f"on {len(calib_rows)} benign texts")
    return clf


def train(data: str | Path = training_data.OUT, hash_dim: int = 4096, target_fpr: float = 0.05, l2: float = 1e-3,
          steps: int = 600, embedder: Any = None, log: Any = print) -> EmbeddingClassifier:
    from .embedding import resolve_embedder

    path = Path(data)
    if not path.exists():
        training_data.write(path)
    rows = training_data.load(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    emb = resolve_embedder(embedder)
    spec = FeatureSpec(embedder="minilm" if embedder is None else str(getattr(emb, "path", "custom")),
                       hash_dim=hash_dim)
    norm = Normalizer()
    train_rows = [r for r in rows if r["split"] == "train"]
    calib_rows = [r for r in rows if r["split"] == "calib"]
    texts, labels, _ = expand(train_rows, norm)
    x = featurize(texts, emb, spec)
    y = np.asarray(labels, np.float64)
    w, b = fit_logreg(x, y, l2=l2, steps=steps)
    clf = EmbeddingClassifier(w, b, 0.5, spec, {}, emb)
    train_acc = float(((clf.proba_features(x) >= 0.5) == (y == 1)).mean())
    return _calibrate_and_describe(clf, norm, '', digest, train_rows, calib_rows, len(texts), y, train_acc,
                                   target_fpr, l2, steps, log)


def train_fast(data: str | Path = training_data.OUT, spec: NgramSpec | None = None, target_fpr: float = 0.05,
               l2: float = 1e-4, steps: int = 600, log: Any = print) -> NgramClassifier:
    """The fast classifier: the same rows, views, loss and calibration as `train`, hashed n-grams only."""
    path = Path(data)
    if not path.exists():
        training_data.write(path)
    rows = training_data.load(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    spec = spec if spec is not None else NgramSpec()
    norm = Normalizer()
    train_rows = [r for r in rows if r["split"] == "train"]
    calib_rows = [r for r in rows if r["split"] == "calib"]
    texts, labels, _ = expand(train_rows, norm)
    r, c, v = sparse_features(texts, spec)
    y = np.asarray(labels, np.float64)
    w, b = fit_logreg_sparse(r, c, v, (len(texts), spec.dim), y, l2=l2, steps=steps)
    clf = NgramClassifier(w, b, 0.5, spec, {})
    train_acc = float(((clf.proba(texts) >= 0.5) == (y == 1)).mean())
    return _calibrate_and_describe(clf, norm, '[ngram] ', digest, train_rows, calib_rows, len(texts), y, train_acc,
                                   target_fpr, l2, steps, log)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infercore.guardrails.train_classifier",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(training_data.OUT))
    ap.add_argument("--features", choices=FEATURES, default="ngram+minilm",
                    help="ngram: the fast model (no embedder); ngram+minilm: the accurate one")
    ap.add_argument("--out", default=None, help=f"default: {DEFAULT_WEIGHTS.name} or {FAST_WEIGHTS.name} "
                                                f"(--features ngram) in the package data")
    ap.add_argument("--hash-dim", type=int, default=None,
                    help="ngram+minilm: hashed char n-gram features (default 4096; 0: embeddings only); ngram: "
                         "character buckets (default 16384; words get half as many)")
    ap.add_argument("--target-fpr", type=float, default=0.05)
    ap.add_argument("--l2", type=float, default=None, help="default 1e-3 (ngram+minilm), 1e-4 (ngram)")
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args(argv)
    if not 0.0 <= args.target_fpr < 1.0:
        print("error: --target-fpr: expected a value in [0, 1)", file=sys.stderr)
        return 2
    if args.hash_dim is not None and args.hash_dim < (2 if args.features == "ngram" else 0):
        print(f"error: --hash-dim: expected >= {2 if args.features == 'ngram' else 0}", file=sys.stderr)
        return 2
    if args.features == "ngram":
        spec = NgramSpec() if args.hash_dim is None else NgramSpec(args.hash_dim, args.hash_dim // 2)
        clf: Any = train_fast(args.data, spec, args.target_fpr, 1e-4 if args.l2 is None else args.l2, args.steps)
        out = args.out or str(FAST_WEIGHTS)
    else:
        hash_dim = 4096 if args.hash_dim is None else args.hash_dim
        clf = train(args.data, hash_dim, args.target_fpr, 1e-3 if args.l2 is None else args.l2, args.steps)
        out = args.out or str(DEFAULT_WEIGHTS)
    clf.save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
