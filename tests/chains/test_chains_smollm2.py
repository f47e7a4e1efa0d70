"""A registered chat prompt chained on the real SmolLM2 (skipped where the model is not installed)."""

from __future__ import annotations

import pytest

from infercore import SamplingParams
from infercore.chains import InMemoryExporter, Sequential, Step, Tracer
from infercore.prompts import PromptRegistry


@pytest.fixture(scope="module")
def smollm2():
    from infercore.models.registry import list_models

    if not any(m["name"] == "smollm2" and m["state"] in ("installed", "cached") for m in list_models()):
        pytest.skip("SmolLM2 is not installed (infercore models pull smollm2)")
    from infercore import LLM

    return LLM("smollm2")


def test_chat_chain_on_smollm2(smollm2, tmp_path):
    reg = PromptRegistry(tmp_path / "reg")
    ask = reg.register("capital", [{"role": "system", "content": "Answer in one word."},
                                   {"role": "user", "content": "What is the capital of {{ country }}?"}],
                       variables={"country": "str"}, model_config={"model": "smollm2", "max_tokens": 6})  # fmt: skip
    shout = reg.register("shout", "Repeat in capitals: {{ capital }}", variables={"capital": "str"},
                         model_config={"model": "smollm2", "max_tokens": 6})  # fmt: skip
    mem = InMemoryExporter()
    run = Sequential("geo", [Step("capital", ask, smollm2), Step("shout", shout, smollm2)]).run(
        {"country": "France"}, tracer=Tracer([mem]))
    msgs = [{"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"}]  # fmt: skip
    bare = smollm2.chat(msgs, SamplingParams(max_tokens=6))[0]
    assert run.state["capital"] == bare.outputs[0].text and "Paris" in run.state["capital"]
    chat_span = next(s for s in mem.spans if s.attributes.get("infercore.prompt.name") == "capital")
    assert chat_span.name == "chat smollm2" and chat_span.attributes["gen_ai.operation.name"] == "chat"
    assert chat_span.attributes["gen_ai.usage.input_tokens"] == len(bare.prompt_token_ids)
    assert [c.prompt for c in run.calls] == ["capital@v1", "shout@v1"]
