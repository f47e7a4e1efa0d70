import numpy as np
import pytest

from infercore.models.config import ModelConfig
from infercore.models.gguf import GGUFFile, write_gguf
from infercore.models.hf import load_hf_model
from infercore.models.llama_ref import LlamaReference, normalize_gguf_weights, normalize_hf_weights, rope_inv_freq

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _tiny_hf(tmp_path, tie=False, rope_scaling=None, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=5000.0,
        rms_norm_eps=1e-5,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
        rope_scaling=rope_scaling,
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norms default to ones: randomize them so a wrong norm shows
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    model.save_pretrained(tmp_path, safe_serialization=True)
    return model


IDS = [5, 17, 3, 96, 0, 42, 42, 8, 61, 2, 33]


@pytest.mark.parametrize(
    ("tie", "rope_scaling"),
    [
        (False, None),
        (True, None),
        (
            False,
            {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        ),
    ],
)
def test_matches_transformers(tmp_path, tie, rope_scaling):
    model = _tiny_hf(tmp_path, tie=tie, rope_scaling=rope_scaling)
    m = load_hf_model(tmp_path, skip_tokenizer_init=True)
    assert m.model_config.tie_word_embeddings == tie
    plain = 1.0 / 5000.0 ** (np.arange(0, 16, 2) / 16)
    assert np.allclose(rope_inv_freq(m.model_config), plain) == (rope_scaling is None)  # scaling is really on
    ref = LlamaReference(m.model_config, normalize_hf_weights(m.weights()))
    with torch.no_grad():
        want = model(torch.tensor([IDS])).logits[0].numpy()
    got = ref.compute_logits(IDS)
    assert got.dtype == np.float32 and got.shape == (len(IDS), 97)
    assert np.abs(got - want).max() <= 1e-4
    np.testing.assert_allclose(ref.compute_logits(IDS, last_only=True)[0], got[-1], rtol=1e-5, atol=1e-5)
    cache = []  # prefill 4 tokens, then one at a time: same logits as the full pass
    steps = [ref.compute_logits(IDS[:4], cache=cache)] + [ref.compute_logits([t], cache=cache) for t in IDS[4:]]
    np.testing.assert_allclose(np.concatenate(steps), got, rtol=0, atol=1e-5)
    ref64 = LlamaReference(m.model_config, normalize_hf_weights(m.weights()), dtype=np.float64)
    assert np.abs(ref64.compute_logits(IDS) - want).max() <= 1e-4


def _permute(w, n_head):
    # llama.cpp's convert_hf_to_gguf permutation of Q/K rows (HF rotate-half -> adjacent pairs)
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_gguf_weights_give_the_same_logits(tmp_path):
    _tiny_hf(tmp_path)
    m = load_hf_model(tmp_path, skip_tokenizer_init=True)
    c = m.model_config
    w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in m.weights().items()}
    tensors = {
        "token_embd.weight": w["model.embed_tokens.weight"],
        "output_norm.weight": w["model.norm.weight"],
        "output.weight": w["lm_head.weight"],
    }
    for i in range(c.num_layers):
        p = f"model.layers.{i}."
        tensors |= {
            f"blk.{i}.attn_norm.weight": w[p + "input_layernorm.weight"],
            f"blk.{i}.attn_q.weight": _permute(w[p + "self_attn.q_proj.weight"], c.num_heads),
            f"blk.{i}.attn_k.weight": _permute(w[p + "self_attn.k_proj.weight"], c.num_kv_heads),
            f"blk.{i}.attn_v.weight": w[p + "self_attn.v_proj.weight"],
            f"blk.{i}.attn_output.weight": w[p + "self_attn.o_proj.weight"],
            f"blk.{i}.ffn_norm.weight": w[p + "post_attention_layernorm.weight"],
            f"blk.{i}.ffn_gate.weight": w[p + "mlp.gate_proj.weight"],
            f"blk.{i}.ffn_up.weight": w[p + "mlp.up_proj.weight"],
            f"blk.{i}.ffn_down.weight": w[p + "mlp.down_proj.weight"],
        }
    md = {
        "general.architecture": "llama",
        "llama.embedding_length": 64,
        "llama.feed_forward_length": 96,
        "llama.block_count": 2,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
        "llama.rope.freq_base": 5000.0,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.context_length": 128,
        "llama.vocab_size": 97,
    }
    write_gguf(tmp_path / "tiny.gguf", md, tensors)
    f = GGUFFile(tmp_path / "tiny.gguf")
    gc = ModelConfig.from_gguf(f)
    from_gguf = LlamaReference(gc, normalize_gguf_weights({n: t.numpy() for n, t in f.tensors.items()}, gc))
    from_hf = LlamaReference(c, normalize_hf_weights(m.weights()))
    np.testing.assert_allclose(from_gguf.compute_logits(IDS), from_hf.compute_logits(IDS), rtol=0, atol=1e-5)
    # without the un-permutation the logits differ: the test can tell
    wrong = normalize_gguf_weights({n: t.numpy() for n, t in f.tensors.items()}, gc)
    wrong["layers.0.wq"] = tensors["blk.0.attn_q.weight"]
    assert np.abs(LlamaReference(gc, wrong).compute_logits(IDS) - from_hf.compute_logits(IDS)).max() > 1e-3


def test_bad_inputs(tmp_path):
    _tiny_hf(tmp_path)
    m = load_hf_model(tmp_path, skip_tokenizer_init=True)
    w = normalize_hf_weights(m.weights())
    ref = LlamaReference(m.model_config, w)
    with pytest.raises(ValueError, match="token_ids"):
        ref.compute_logits([97])
    with pytest.raises(ValueError, match="token_ids"):
        ref.compute_logits([])
    bad = dict(w)
    bad.pop("layers.1.w_up")
    with pytest.raises(ValueError, match=r"missing 'layers\.1\.w_up'"):
        LlamaReference(m.model_config, bad)
    bad = dict(w, **{"layers.0.wq": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match=r"weights\['layers.0.wq'\]: shape \(3, 3\)"):
        LlamaReference(m.model_config, bad)
    with pytest.raises(TypeError, match="dtype"):
        LlamaReference(m.model_config, w, dtype=np.float16)


def test_smollm2_answers_paris(smollm2_gguf):
    gguf = pytest.importorskip("gguf")
    from infercore.models.chat_template import ChatTemplate
    from infercore.models.tokenizer import Tokenizer

    f = GGUFFile(smollm2_gguf)
    c = ModelConfig.from_gguf(f)
    dense = {n: gguf.quants.dequantize(t.data, t.ggml_type).reshape(t.shape) for n, t in f.tensors.items()}
    ref = LlamaReference(c, normalize_gguf_weights(dense, c))
    tok = Tokenizer.from_gguf(f)
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    prompt = ChatTemplate(tok.chat_template).render(msgs, add_generation_prompt=True)
    out = ref.greedy(tok.encode(prompt), max_new_tokens=6, stop_ids=[tok.eos_token_id, tok.token_to_id("<|im_end|>")])
    text = tok.decode(out, skip_special_tokens=True)
    assert "Paris" in text, text
