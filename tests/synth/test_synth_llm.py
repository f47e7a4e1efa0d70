from __future__ import annotations

import math

import numpy as np
import pytest

from infercore.synth import LLMJudge, Spec, generate

LLM_SPEC = """\
name: llm_toy
seed: 4
slots:
  topic: {type: categorical, values: [billing, delivery, passwords]}
  style: {type: categorical, values: [polite, angry]}
templates: ["Write one {{ style }} customer message about {{ topic }}."]
fields:
  topic: "{{ topic }}"
llm:
  model: unused-here
  system: "You write {{ style }} customer messages."
  max_tokens: 6
  temperature: 1.0
  top_p: 0.95
  batch_size: 3
"""


def test_llm_rendering_is_seeded(tiny_llm):
    spec = Spec.from_yaml(LLM_SPEC, is_text=True)
    a = generate(spec, 5, llm=tiny_llm)
    b = generate(spec, 5, llm=tiny_llm)
    c = generate(spec, 5, llm=tiny_llm, seed=99)
    assert a == b
    assert [r["text"] for r in a] != [r["text"] for r in c]
    for r in a:
        assert r["prompt"] == f"Write one {r['slots']['style']} customer message about {r['slots']['topic']}."
        assert r["topic"] == r["slots"]["topic"] and isinstance(r["text"], str)
    assert any(r["text"] for r in a)  # the random model emits bytes; the pipeline keeps them
    # the per-request seed makes an example independent of the batch it ran in
    assert generate(spec, 2, llm=tiny_llm) == a[:2]


def test_llm_judge_logits_and_generate(tiny_llm):
    texts = ["A clear question about a late delivery.", "zzzz", "Refund please."]
    judge = LLMJudge(tiny_llm, task="support")
    s1, s2 = judge(texts), judge(texts)
    assert np.all((s1 >= 0) & (s1 <= 1)) and np.array_equal(s1, s2)
    assert len(set(np.round(s1, 9))) > 1  # different texts, different expected ratings
    gen = LLMJudge(tiny_llm, mode="generate", max_tokens=3)
    s = gen(texts)
    n_nan = sum(math.isnan(x) for x in s)
    assert gen.failures == n_nan  # unparsable judge output is a counted failure, not a crash
    assert all(math.isnan(x) or x in (0.0, 0.25, 0.5, 0.75, 1.0) for x in s)
    with pytest.raises(ValueError, match="mode"):
        LLMJudge(tiny_llm, mode="vibes")
    with pytest.raises(ValueError, match="Jinja2"):
        LLMJudge(tiny_llm, prompt="{{ text ")


def test_llm_spec_errors():
    with pytest.raises(ValueError, match=r"llm\.temprature \(line \d+\): unknown key"):
        Spec.from_yaml(LLM_SPEC.replace("temperature:", "temprature:"), is_text=True)
    with pytest.raises(ValueError, match=r"llm\.max_tokens.*wrong type"):
        Spec.from_yaml(LLM_SPEC.replace("max_tokens: 6", "max_tokens: six"), is_text=True)
    with pytest.raises(ValueError, match=r"llm\.system.*unknown slot\(s\) \['mood'\]"):
        Spec.from_yaml(LLM_SPEC.replace("You write {{ style }}", "You write {{ mood }}"), is_text=True)


@pytest.mark.slow
def test_smollm2_renders_reproducibly():
    from infercore.models import resolve_model

    try:
        resolve_model("smollm2")
    except ValueError:
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    from infercore import LLM

    llm = LLM("smollm2")
    spec = Spec.from_yaml(LLM_SPEC.replace("max_tokens: 6", "max_tokens: 24"), is_text=True)
    a = generate(spec, 3, llm=llm)
    assert a == generate(spec, 3, llm=llm)
    assert all(len(r["text"].split()) >= 3 for r in a)
