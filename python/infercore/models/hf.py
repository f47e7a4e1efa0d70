"""Load a Hugging Face model directory: config.json, *.safetensors (single or sharded), tokenizer.json."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import ModelConfig
from .safetensors import SafetensorsFile
from .tokenizer import Tokenizer

INDEX_NAME = "model.safetensors.index.json"


@dataclass
class HFModel:
    path: str
    config: dict[str, Any]  # config.json as written
    model_config: ModelConfig | None  # None for architectures that are not Llama-like (e.g. BERT)
    files: list[SafetensorsFile]
    tensor_files: dict[str, SafetensorsFile] = field(repr=False)  # tensor name -> file holding it
    tokenizer: Tokenizer | None = None

    def weights(self) -> dict[str, np.ndarray]:
        """All tensors as zero-copy views (name -> array)."""
        return {name: f[name] for name, f in self.tensor_files.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.tensor_files:
            raise KeyError(f"{self.path}: no tensor named {name!r}")
        return self.tensor_files[name][name]


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as e:
        raise ValueError(f"{path}: cannot read {what}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: {what} is not valid JSON: {e}") from None


def _shard_path(root: str, name: Any, index_path: str) -> str:
    # the index is untrusted: a shard name must be a plain file name inside the model directory
    if not isinstance(name, str) or not name or os.path.basename(name) != name or name in (".", ".."):
        raise ValueError(f"{index_path}: shard file name {name!r} is not a plain file name in the model directory")
    return os.path.join(root, name)


def load_hf_model(path: str | os.PathLike[str], *, skip_tokenizer_init: bool = False) -> HFModel:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    root = os.fspath(path)
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a directory (expected a Hugging Face model directory)")
    config = _read_json(os.path.join(root, "config.json"), "config")
    if not isinstance(config, dict):
        raise ValueError(f"{os.path.join(root, 'config.json')}: expected a JSON object")
    model_config = None
    if config.get("model_type") in ("llama", "mistral", "qwen2"):
        model_config = ModelConfig.from_hf_config(config)

    index_path = os.path.join(root, INDEX_NAME)
    files: dict[str, SafetensorsFile] = {}
    tensor_files: dict[str, SafetensorsFile] = {}
    if os.path.exists(index_path):
        index = _read_json(index_path, "safetensors index")
        wmap = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wmap, dict) or not wmap:
            raise ValueError(f"{index_path}: 'weight_map' must be a non-empty object")
        for name, shard in wmap.items():
            sp = _shard_path(root, shard, index_path)
            if sp not in files:
                files[sp] = SafetensorsFile(sp)
            if name not in files[sp]:
                raise ValueError(f"{index_path}: tensor {name!r} is mapped to {shard!r}, which does not contain it")
            tensor_files[name] = files[sp]
    else:
        shards = sorted(n for n in os.listdir(root) if n.endswith(".safetensors"))
        if not shards:
            raise ValueError(f"{root}: no *.safetensors file and no {INDEX_NAME}")
        for n in shards:
            f = files[n] = SafetensorsFile(os.path.join(root, n))
            for name in f:
                if name in tensor_files:
                    raise ValueError(f"{f.path}: tensor {name!r} also appears in {tensor_files[name].path}")
                tensor_files[name] = f
    tokenizer = None
    if not skip_tokenizer_init:
        if not os.path.exists(os.path.join(root, "tokenizer.json")):
            raise ValueError(f"{root}: no tokenizer.json (pass skip_tokenizer_init=True to load without one)")
        tokenizer = Tokenizer.from_file(root)
    return HFModel(root, config, model_config, list(files.values()), tensor_files, tokenizer)
