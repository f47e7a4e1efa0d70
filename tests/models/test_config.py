import json

import numpy as np
import pytest

from infercore.models.config import ModelConfig
from infercore.models.gguf import write_gguf


def _llama_meta(**over):
    md = {
        "general.architecture": "llama",
        "llama.embedding_length": 64,
        "llama.feed_forward_length": 128,
        "llama.block_count": 2,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.rope.freq_base": 500000.0,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.context_length": 256,
        "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
    }
    md.update(over)
    return {k: v for k, v in md.items() if v is not None}


def test_from_gguf_tiny(tmp_path):
    p = tmp_path / "m.gguf"
    write_gguf(p, _llama_meta(), {"output.weight": np.zeros((100, 64), np.float32)})
    c = ModelConfig.from_gguf(p)
    assert (c.vocab_size, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == (100, 64, 4, 2, 16)
    assert c.rope_theta == 500000.0 and c.max_position_embeddings == 256 and not c.tie_word_embeddings
    assert (c.bos_token_id, c.eos_token_id) == (1, 2)
    write_gguf(p, _llama_meta(**{"llama.feed_forward_length": None}), {})
    with pytest.raises(ValueError, match=r"m\.gguf: required key 'llama.feed_forward_length'"):
        ModelConfig.from_gguf(p)
    write_gguf(p, _llama_meta(**{"llama.attention.head_count_kv": 3}), {})
    with pytest.raises(ValueError, match=r"num_kv_heads \(3\) must divide num_heads \(4\)"):
        ModelConfig.from_gguf(p)
    write_gguf(p, _llama_meta(**{"general.architecture": "bert"}), {})
    with pytest.raises(ValueError, match="'bert' is not supported"):
        ModelConfig.from_gguf(p)


def test_from_gguf_smollm2(smollm2_gguf):
    c = ModelConfig.from_gguf(smollm2_gguf)
    assert c.architecture == "llama"
    assert (c.num_layers, c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim) == (30, 576, 9, 3, 64)
    assert (c.intermediate_size, c.vocab_size, c.rope_theta) == (1536, 49152, 100000.0)
    assert c.tie_word_embeddings and c.max_position_embeddings == 8192
    assert c.rms_norm_eps == pytest.approx(1e-5)
    assert (c.bos_token_id, c.eos_token_id) == (1, 2)


def test_from_hf_config(tmp_path):
    transformers = pytest.importorskip("transformers")
    hf = transformers.LlamaConfig(
        vocab_size=300,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        rope_theta=12345.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=[2, 3],
    )
    hf.save_pretrained(tmp_path)
    c = ModelConfig.from_hf_config(tmp_path)
    assert (c.vocab_size, c.hidden_size, c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim) == (300, 48, 3, 6, 2, 8)
    assert c.rope_theta == 12345.0 and c.tie_word_embeddings and c.eos_token_id == 2 and c.stop_token_ids == (2, 3)
    assert ModelConfig.from_hf_config(json.loads((tmp_path / "config.json").read_text())) == c


@pytest.mark.parametrize(
    ("over", "msg"),
    [
        ({"model_type": "bert"}, "model_type 'bert' is not supported"),
        ({"num_attention_heads": 5}, r"num_heads \(5\) must divide hidden_size \(48\)"),
        ({"num_hidden_layers": 0}, "num_layers must be a positive int"),
        ({"vocab_size": "x"}, "vocab_size must be a positive int"),
        ({"rms_norm_eps": -1.0}, "rms_norm_eps must be a positive finite number"),
        ({"eos_token_id": 999}, "eos_token_id 999 is not a token id"),
        ({"hidden_size": None}, "hidden size None"),
    ],
)
def test_hf_config_validation(over, msg):
    c = {
        "model_type": "llama",
        "vocab_size": 300,
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 6,
        "num_key_value_heads": 2,
    }
    c.update(over)
    with pytest.raises(ValueError, match=msg):
        ModelConfig.from_hf_config(c)


def test_hf_config_file_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot read config"):
        ModelConfig.from_hf_config(tmp_path)
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(ValueError, match="invalid JSON"):
        ModelConfig.from_hf_config(tmp_path)
