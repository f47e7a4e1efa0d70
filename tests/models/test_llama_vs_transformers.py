"""Our Llama (engine + kernels + paged KV cache) against transformers on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")

from infercore.engine.llm import LLM  # noqa: E402
from infercore.engine.sampling_params import SamplingParams  # noqa: E402


def _tiny(tmp_path, name, *, kv_heads=2, tie=False, seed=0):
    cfg = transformers.LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=kv_heads, max_position_embeddings=256, rope_theta=10000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger than the default init so the test sees real signal
        for p in model.parameters():
            p.mul_(4.0) if p.ndim > 1 else None
    d = tmp_path / name
    d.mkdir()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if tie:
        state.pop("lm_head.weight", None)
    safetensors_torch.save_file(state, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({**cfg.to_dict(), "architectures": ["LlamaForCausalLM"]}))
    return model, str(d)


@pytest.mark.parametrize(("kv_heads", "tie"), [(2, False), (1, True), (4, False)])
def test_logits_match_transformers(tmp_path, kv_heads, tie):
    model, path = _tiny(tmp_path, f"m{kv_heads}{tie}", kv_heads=kv_heads, tie=tie)
    llm = LLM(path, skip_tokenizer_init=True, kv_cache_dtype="float32", block_size=4, kv_cache_bytes=1 << 22)
    ids = [1, 5, 9, 33, 60, 2, 17, 88, 40, 3, 71]
    ours = llm.compute_logits(ids)
    with torch.no_grad():
        theirs = model(torch.tensor([ids])).logits[0].numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)


def test_batched_greedy_equals_transformers(tmp_path):
    model, path = _tiny(tmp_path, "g")
    llm = LLM(path, skip_tokenizer_init=True, kv_cache_dtype="float32", block_size=4, kv_cache_bytes=1 << 22,
              max_num_batched_tokens=16)  # fmt: skip
    rng = np.random.default_rng(0)
    prompts = [rng.integers(3, 97, n).tolist() for n in (1, 5, 12, 30)]
    params = SamplingParams(max_tokens=32, ignore_eos=True)
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params)
    for p, out in zip(prompts, outs, strict=True):
        with torch.no_grad():
            ref = model.generate(torch.tensor([p]), max_new_tokens=32, do_sample=False, eos_token_id=None,
                                 pad_token_id=0)[0, len(p):].tolist()  # fmt: skip
        assert out.outputs[0].token_ids == ref
    one_by_one = [llm.generate({"prompt_token_ids": p}, params)[0].outputs[0].token_ids for p in prompts]
    assert one_by_one == [o.outputs[0].token_ids for o in outs]


def test_max_model_len_is_checked_against_the_model(tmp_path):
    # 10^12 was accepted (RoPE positions past the trained 256), 0 silently became the default
    _, path = _tiny(tmp_path, "len")
    for bad, err in ((10**12, ValueError), (257, ValueError), (0, ValueError), (-3, ValueError), (2.5, TypeError),
                     (True, TypeError)):
        with pytest.raises(err, match="max_model_len"):
            LLM(path, skip_tokenizer_init=True, kv_cache_bytes=1 << 22, max_model_len=bad)
    assert LLM(path, skip_tokenizer_init=True, kv_cache_bytes=1 << 22, max_model_len=256).max_model_len == 256
