"""Model loading: GGUF and safetensors readers, configs, tokenizers, chat templates, model registry.

Not imported by `import infercore` (keeps it fast); `tokenizers` and `jinja2` load on first use.
"""

from .chat_template import ChatTemplate, ChatTemplateError, render_chat_template
from .config import ModelConfig
from .gguf import GGML_BLOCK_SIZES, GGMLType, GGUFFile, GGUFTensor, GGUFValue, GGUFValueType, ggml_nbytes, write_gguf
from .hf import HFModel, load_hf_model
from .llama_ref import LlamaReference, normalize_gguf_weights, normalize_hf_weights
from .registry import KNOWN_MODELS, ModelPullError, ModelSpec, infercore_home, list_models, pull, resolve_model
from .safetensors import SafetensorsFile, SafetensorsTensor
from .tokenizer import IncrementalDecoder, Tokenizer

__all__ = [
    "GGML_BLOCK_SIZES",
    "KNOWN_MODELS",
    "ChatTemplate",
    "ChatTemplateError",
    "GGMLType",
    "GGUFFile",
    "GGUFTensor",
    "GGUFValue",
    "GGUFValueType",
    "HFModel",
    "IncrementalDecoder",
    "LlamaReference",
    "ModelConfig",
    "ModelPullError",
    "ModelSpec",
    "SafetensorsFile",
    "SafetensorsTensor",
    "Tokenizer",
    "ggml_nbytes",
    "infercore_home",
    "list_models",
    "load_hf_model",
    "normalize_gguf_weights",
    "normalize_hf_weights",
    "pull",
    "render_chat_template",
    "resolve_model",
    "write_gguf",
]
