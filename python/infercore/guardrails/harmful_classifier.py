"""Harmful-content classifier: one logistic regression per category over hashed character/word n-grams.

    python -m infercore.guardrails.harmful_classifier [--target-fpr 0.03] [--out PATH]   # trains, writes weights

Same features as the fast injection classifier (ngram_classifier.sparse_features), a weight column
per category of harmful.CATEGORIES: column c is trained "category c vs benign" (the other
categories are left out of its loss, so near categories such as violence and weapons do not push
each other down). p(harmful) = the highest category probability; the category is its argmax, so
the rail can apply the per-category action even where the lexicon found nothing.

Scored like the injection classifiers: sentence pieces (classifier.windows) of every detection view
(normalize.py), the maximum wins. Training rows: data/harmful_train.jsonl (harmful_data.py) plus the
benign rows of the injection training set (everyday and hard-negative text, same train/calib split).
Threshold: on the benign calibration texts, the lowest with at most `target_fpr` of them at or above
it (score as at inference), never below 0.5. Deterministic (full-batch Adam from zeros).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._fileio import check_path
from . import harmful_data, training_data
from .classifier import check_texts, check_threshold, view_texts, windows
from .ngram_classifier import NgramSpec, sparse_features
from .normalize import Normalizer

HARMFUL_WEIGHTS = Path(__file__).resolve().parent / "data" / "harmful_clf_fast.npz"
CATEGORIES: tuple[str, ...] = ("violence", "self_harm", "hate", "sexual_minors", "weapons", "illegal_activity")
DEFAULT_SPEC = NgramSpec(char_dim=1 << 13, word_dim=1 << 12)


@dataclass
class HarmfulClassifier:
    """p(category | text) = sigmoid(W[:, c] . hashed_ngrams(text) + b[c]) per category."""

    w: np.ndarray = field(repr=False)  # (spec.dim, len(categories))
    b: np.ndarray = field(repr=False)  # (len(categories),)
    threshold: float
    categories: tuple[str, ...] = CATEGORIES
    spec: NgramSpec = field(default_factory=lambda: DEFAULT_SPEC)
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    window_chars: int = 80
    max_windows: int = 8

    @classmethod
    def load(cls, path: str | Path | None = None) -> HarmfulClassifier:
        p = Path(check_path(path, "path")) if path is not None else HARMFUL_WEIGHTS
        if not p.is_file():
            raise ValueError(f"classifier: weights file {str(p)!r} not found (run python -m "
                             f"infercore.guardrails.harmful_classifier)")
        try:
            with np.load(p, allow_pickle=False) as z:
                w, b, thr = z["w"].astype(np.float32), z["b"].astype(np.float64), float(z["threshold"])
                meta = json.loads(str(z["meta"]))
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"classifier: {str(p)!r} is not a harmful-classifier weights file: {e}") from e
        if not isinstance(meta, dict) or meta.get("kind") != "harmful-ngram":
            raise ValueError(f"classifier: {str(p)!r} is not a harmful-classifier weights file")
        check_threshold(thr, f"classifier: {str(p)!r}: threshold")
        spec = NgramSpec.from_meta(meta["features"])
        cats = tuple(meta["categories"])
        if w.shape != (spec.dim, len(cats)) or b.shape != (len(cats),):
            raise ValueError(f"classifier: weights have shape {w.shape}, expected {(spec.dim, len(cats))}")
        return cls(w, b, thr, cats, spec, meta)

    def save(self, path: str | Path) -> None:
        meta = dict(self.meta, kind="harmful-ngram", features=self.spec.to_meta(), categories=list(self.categories))
        # float16 weights: a 4x smaller package file; scores move by < 1e-3 (the threshold is fitted after rounding)
        np.savez_compressed(path, w=self.w.astype(np.float16), b=self.b.astype(np.float64),
                            threshold=np.float64(self.threshold), meta=np.array(json.dumps(meta, sort_keys=True)))

    def proba(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(categories)) probabilities per text (no views, no windows)."""
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, len(self.categories)))
        rows, cols, val = sparse_features(texts, self.spec)
        contrib = self.w[cols] * val[:, None]  # (nnz, n_cat); rows come sorted and every text has features
        starts = np.searchsorted(rows, np.arange(len(texts)))
        z = np.zeros((len(texts), len(self.categories)))
        has = np.bincount(rows, minlength=len(texts)) > 0
        if has.any():
            z[has] = np.add.reduceat(contrib, starts[has], axis=0)
        return 1.0 / (1.0 + np.exp(-np.clip(z + self.b, -50, 50)))

    def score(self, text: str, normalizer: Normalizer) -> tuple[float, str, str]:
        """(highest probability over views, pieces and categories, its category, its view)."""
        first_view: dict[str, str] = {}
        for name, view in view_texts(text, normalizer):
            for piece in windows(view, self.window_chars, self.max_windows):
                if piece.strip():
                    first_view.setdefault(piece, name)
        if not first_view:
            return 0.0, self.categories[0], "folded"
        pieces = list(first_view)
        p = self.proba(pieces)
        i, c = np.unravel_index(int(np.argmax(p)), p.shape)
        return float(p[i, c]), self.categories[int(c)], first_view[pieces[int(i)]]


def training_rows() -> list[dict[str, Any]]:
    """harmful_data rows plus the benign rows of the injection training set (category "none")."""
    rows = [dict(r) for r in harmful_data.load()] if harmful_data.OUT.exists() else harmful_data.build()
    rows += [dict(r, category="none") for r in training_data.load() if r["label"] == 0]
    return rows


def _expand(rows: list[dict[str, Any]], norm: Normalizer) -> tuple[list[str], list[str]]:
    """Harmful rows train on their most-normalized view (and the folded one if plain); benign rows on
    every view (at inference the maximum over views must stay low)."""
    texts: list[str] = []
    cats: list[str] = []
    for r in rows:
        views = [t for _, t in view_texts(str(r["text"]), norm) if t.strip()]
        if not views:
            continue
        chosen = views if r["label"] == 0 else [views[-1], *([views[0]] if r["variant"] == "plain" else [])]
        for t in dict.fromkeys(chosen):
            texts.append(t)
            cats.append(str(r["category"]) if r["label"] == 1 else "none")
    return texts, cats


def train(target_fpr: float = 0.03, l2: float = 1e-4, steps: int = 500, spec: NgramSpec | None = None,
          log: Any = print) -> HarmfulClassifier:
    from .train_classifier import calibrate, fit_logreg_sparse

    spec = spec if spec is not None else DEFAULT_SPEC
    rows = training_rows()
    digest = hashlib.sha256(json.dumps(rows, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    norm = Normalizer()
    train_rows = [r for r in rows if r["split"] == "train"]
    calib_rows = [r for r in rows if r["split"] == "calib"]
    texts, cats = _expand(train_rows, norm)
    r, c, v = sparse_features(texts, spec)
    cat_arr = np.array(cats)
    w = np.zeros((spec.dim, len(CATEGORIES)), np.float32)
    b = np.zeros(len(CATEGORIES))
    for k, cat in enumerate(CATEGORIES):
        keep_rows = np.flatnonzero((cat_arr == cat) | (cat_arr == "none"))
        remap = np.full(len(texts), -1, np.int64)
        remap[keep_rows] = np.arange(len(keep_rows))
        m = remap[r] >= 0
        y = (cat_arr[keep_rows] == cat).astype(np.float64)
        w[:, k], b[k] = fit_logreg_sparse(remap[r][m], c[m], v[m], (len(keep_rows), spec.dim), y, l2=l2, steps=steps)
    clf = HarmfulClassifier(w.astype(np.float16).astype(np.float32), b, 0.5, CATEGORIES, spec)
    p = clf.proba(texts)
    pred = np.where(p.max(axis=1) >= 0.5, np.array(CATEGORIES)[p.argmax(axis=1)], "none")
    train_acc = float((pred == cat_arr).mean())
    calib = np.array([clf.score(str(x["text"]), norm)[0] for x in calib_rows])
    clf.threshold = calibrate(calib, target_fpr)
    calib_fpr = float((calib >= clf.threshold).mean())
    clf.meta = {"training_sha256": digest, "train_rows": len(train_rows), "train_views": len(texts),
                "calib_rows": len(calib_rows), "target_fpr": target_fpr, "calib_fpr": calib_fpr,
                "train_accuracy": train_acc, "l2": l2, "steps": steps}
    log(f"[harmful] trained on {len(train_rows)} rows ({len(texts)} views, {int((cat_arr != 'none').sum())} harmful), "
        f"train accuracy {train_acc:.3f}; threshold {clf.threshold:.3f} -> calibration FPR {calib_fpr:.3f} on "
        f"{len(calib_rows)} benign texts")
    return clf


def load_harmful_classifier(c: Any) -> HarmfulClassifier | None:
    """None/False -> None; True/"fast" -> the shipped weights; a path -> that file; a loaded classifier -> itself."""
    if c is None or c is False:
        return None
    if c is True or c == "fast":
        return HarmfulClassifier.load()
    if isinstance(c, (str, os.PathLike)):
        c = check_path(c, "classifier")
        if not c.endswith(".npz"):
            raise ValueError(f"classifier: expected 'fast', a bool or a weights file (.npz), got {str(c)!r}")
        return HarmfulClassifier.load(c)
    if callable(getattr(c, "score", None)) and isinstance(getattr(c, "threshold", None), (int, float)):
        if not math.isfinite(c.threshold):  # NaN would never block
            raise ValueError(f"classifier.threshold: expected a finite number, got {c.threshold!r}")
        return c
    raise TypeError(f"classifier: expected None, a bool, 'fast', a weights path or a loaded classifier, "
                    f"got {type(c).__name__}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infercore.guardrails.harmful_classifier",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(HARMFUL_WEIGHTS))
    ap.add_argument("--target-fpr", type=float, default=0.03)
    ap.add_argument("--l2", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=500)
    args = ap.parse_args(argv)
    if not 0.0 <= args.target_fpr < 1.0:
        print("error: --target-fpr: expected a value in [0, 1)", file=sys.stderr)
        return 2
    if args.steps < 1:
        print("error: --steps: expected >= 1", file=sys.stderr)
        return 2
    if not harmful_data.OUT.exists():
        harmful_data.write()
    clf = train(args.target_fpr, args.l2, args.steps)
    clf.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
