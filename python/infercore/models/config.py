"""ModelConfig: the shape of a decoder-only (Llama-family) model, from GGUF metadata or HF config.json."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any

from .gguf import GGUFFile

# architectures whose graph is the Llama graph (RMSNorm, RoPE, GQA, SwiGLU)
LLAMA_LIKE = ("llama", "mistral", "qwen2")
_HF_MODEL_TYPES = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2"}


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    # HF configs may list several end tokens; eos_token_id is the first
    stop_token_ids: tuple[int, ...] = field(default=())
    attention_bias: bool = False  # qwen2 has q/k/v biases

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        where = f"ModelConfig({self.architecture})"
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "max_position_embeddings",
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{where}: {name} must be a positive int, got {v!r}")
        for name in ("rope_theta", "rms_norm_eps"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{where}: {name} must be a positive finite number, got {v!r}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"{where}: num_kv_heads ({self.num_kv_heads}) must divide num_heads ({self.num_heads})")
        if self.head_dim % 2:
            raise ValueError(f"{where}: head_dim ({self.head_dim}) must be even for RoPE")
        for name in ("bos_token_id", "eos_token_id"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or not 0 <= v < self.vocab_size):
                raise ValueError(f"{where}: {name} {v!r} is not a token id in [0, {self.vocab_size})")
        if self.rope_scaling is not None and not isinstance(self.rope_scaling, dict):
            raise ValueError(f"{where}: rope_scaling must be a dict or None, got {type(self.rope_scaling).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ---- constructors ----

    @classmethod
    def from_gguf(cls, gguf: GGUFFile | str | os.PathLike[str]) -> ModelConfig:
        f = gguf if isinstance(gguf, GGUFFile) else GGUFFile(gguf)
        md, arch = f.metadata, f.architecture
        if arch not in LLAMA_LIKE:
            raise ValueError(f"{f.path}: architecture {arch!r} is not supported (supported: {', '.join(LLAMA_LIKE)})")

        def get(key: str, default: Any = None, required: bool = False) -> Any:
            full = f"{arch}.{key}"
            if full in md:
                return md[full]
            if required:
                raise ValueError(f"{f.path}: required key {full!r} is missing")
            return default

        def int_key(key: str, default: Any = None, required: bool = False) -> Any:
            v = get(key, default, required)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"{f.path}: key '{arch}.{key}' must be an integer, got {v!r}")
            return v

        hidden = int_key("embedding_length", required=True)
        heads = int_key("attention.head_count", required=True)
        if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0:
            raise ValueError(f"{f.path}: embedding_length / attention.head_count must be positive integers")
        tokens = md.get("tokenizer.ggml.tokens")
        vocab = int_key("vocab_size", len(tokens) if isinstance(tokens, list) else None)
        if vocab is None and "token_embd.weight" in f.tensors:
            vocab = f.tensors["token_embd.weight"].shape[0]
        head_dim = int_key("attention.key_length") or int_key("rope.dimension_count") or _div(hidden, heads, f.path)
        scaling = None
        stype = get("rope.scaling.type")
        if stype not in (None, "none"):
            scaling = {"rope_type": stype, "factor": get("rope.scaling.factor", 1.0)}
            orig = get("rope.scaling.original_context_length")
            if orig is not None:
                scaling["original_max_position_embeddings"] = orig
        bos, eos = md.get("tokenizer.ggml.bos_token_id"), md.get("tokenizer.ggml.eos_token_id")
        try:
            return cls(
                architecture=arch,
                vocab_size=vocab,
                hidden_size=hidden,
                intermediate_size=int_key("feed_forward_length", required=True),
                num_layers=int_key("block_count", required=True),
                num_heads=heads,
                num_kv_heads=int_key("attention.head_count_kv", heads),
                head_dim=head_dim,
                rope_theta=float(get("rope.freq_base", 10000.0)),
                rope_scaling=scaling,
                rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
                max_position_embeddings=int_key("context_length", 2048),
                tie_word_embeddings="output.weight" not in f.tensors,
                bos_token_id=bos,
                eos_token_id=eos,
                stop_token_ids=(eos,) if eos is not None else (),
                attention_bias="blk.0.attn_q.bias" in f.tensors,
            )
        except ValueError as e:
            raise ValueError(f"{f.path}: {e}") from None

    @classmethod
    def from_hf_config(cls, config: dict[str, Any] | str | os.PathLike[str]) -> ModelConfig:
        """From an HF config.json (a dict, the file, or its directory)."""
        where = "config"
        if not isinstance(config, dict):
            path = os.fspath(config)
            if os.path.isdir(path):
                path = os.path.join(path, "config.json")
            where = path
            try:
                with open(path, encoding="utf-8") as fh:
                    config = json.load(fh)
            except OSError as e:
                raise ValueError(f"{path}: cannot read config: {e.strerror}") from None
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: invalid JSON: {e}") from None
            if not isinstance(config, dict):
                raise ValueError(f"{path}: expected a JSON object")
        c = config
        mtype = c.get("model_type")
        if mtype not in _HF_MODEL_TYPES:
            raise ValueError(
                f"{where}: model_type {mtype!r} is not supported (supported: {', '.join(_HF_MODEL_TYPES)})"
            )

        def req(key: str) -> Any:
            if key not in c:
                raise ValueError(f"{where}: required key {key!r} is missing")
            return c[key]

        hidden, heads = req("hidden_size"), req("num_attention_heads")
        head_dim = c.get("head_dim") or _div(hidden, heads, where)
        # transformers >= 5 moves rope_theta into rope_parameters
        rope_params = c.get("rope_parameters") or {}
        theta = c.get("rope_theta", rope_params.get("rope_theta", 10000.0))
        scaling = c.get("rope_scaling")
        if scaling is None and rope_params.get("rope_type", "default") != "default":
            scaling = {k: v for k, v in rope_params.items() if k != "rope_theta"}
        eos = c.get("eos_token_id")
        stops = tuple(eos) if isinstance(eos, list) else ((eos,) if eos is not None else ())
        try:
            return cls(
                architecture=_HF_MODEL_TYPES[mtype],
                vocab_size=req("vocab_size"),
                hidden_size=hidden,
                intermediate_size=req("intermediate_size"),
                num_layers=req("num_hidden_layers"),
                num_heads=heads,
                num_kv_heads=c.get("num_key_value_heads") or heads,
                head_dim=head_dim,
                rope_theta=float(theta),
                rope_scaling=scaling,
                rms_norm_eps=float(c.get("rms_norm_eps", 1e-6)),
                max_position_embeddings=c.get("max_position_embeddings", 2048),
                tie_word_embeddings=bool(c.get("tie_word_embeddings", False)),
                bos_token_id=c.get("bos_token_id"),
                eos_token_id=stops[0] if stops else None,
                stop_token_ids=stops,
                attention_bias=bool(c.get("attention_bias", mtype == "qwen2")),
            )
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None


def _div(hidden: Any, heads: Any, where: str) -> int:
    if not isinstance(hidden, int) or not isinstance(heads, int) or heads <= 0 or hidden <= 0:
        raise ValueError(f"{where}: hidden size {hidden!r} and head count {heads!r} must be positive integers")
    if hidden % heads:
        raise ValueError(f"{where}: num_heads ({heads}) must divide hidden_size ({hidden}) when head_dim is not given")
    return hidden // heads
