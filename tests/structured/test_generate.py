"""SamplingParams(json_schema=...) through the engine: a random model's output is still valid JSON
for the schema, and SmolLM2 emits valid tool calls every time."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import pytest

from infercore import LLM, SamplingParams

pytest.importorskip("safetensors")

SCHEMA = {
    "type": "object",
    "properties": {
        "tool": {"enum": ["add", "search"]},
        "arguments": {"type": "object",
                      "properties": {"x": {"type": "number"}, "tags": {"type": "array", "maxItems": 3,
                                                                       "items": {"type": "string", "maxLength": 5}},
                                     "note": {"type": ["string", "null"], "maxLength": 8}},
                      "required": ["x"]},
    },
    "required": ["tool", "arguments"],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    d = tiny_llama_dir(str(tmp_path_factory.mktemp("tiny") / "m"))
    return LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 23)


def test_random_model_output_is_valid_for_the_schema(tiny):
    params = [SamplingParams(temperature=1.0, seed=s, max_tokens=600, json_schema=SCHEMA) for s in range(24)]
    outs = tiny.generate(["{"] * 24, params)
    for o in outs:
        c = o.outputs[0]
        assert c.finish_reason == "stop", (c.finish_reason, c.text)
        jsonschema.validate(json.loads(c.text), SCHEMA)
    assert len({o.outputs[0].text for o in outs}) > 12  # really sampled, not one forced string


def test_greedy_n_and_seed(tiny):
    p = SamplingParams(temperature=0.9, seed=11, n=3, max_tokens=600, json_schema=SCHEMA)
    a = tiny.generate("hi", p)[0]
    b = tiny.generate("hi", p)[0]
    assert [c.text for c in a.outputs] == [c.text for c in b.outputs]  # seeded: reproducible
    for c in a.outputs:
        jsonschema.validate(json.loads(c.text), SCHEMA)
    g = tiny.generate("hi", SamplingParams(max_tokens=600, json_schema={"type": "integer"}))[0].outputs[0]
    assert isinstance(json.loads(g.text), int) and g.finish_reason == "stop"


def test_enum_only_schema_finishes_without_eos(tiny):
    out = tiny.generate("x", SamplingParams(temperature=1.0, seed=0, max_tokens=50,
                                            json_schema={"enum": ["yes", "no"]}))[0].outputs[0]  # fmt: skip
    assert out.text in ('"yes"', '"no"') and out.finish_reason == "stop"
    assert len(out.token_ids) == len(out.text)  # one byte per token, no EOS sampled


def test_json_schema_pattern_is_enforced(tiny):
    import re

    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"}},
              "required": ["id"]}  # fmt: skip
    for seed in range(3):
        out = tiny.generate("x", SamplingParams(temperature=1.0, seed=seed, max_tokens=60, json_schema=schema))
        value = json.loads(out[0].outputs[0].text)
        jsonschema.validate(value, schema)
        assert re.fullmatch(r"[A-Z]{2}-\d{3}", value["id"])


def test_stream_and_max_tokens(tiny):
    text = "".join(tiny.stream("a", SamplingParams(temperature=1.0, seed=3, max_tokens=600, json_schema=SCHEMA)))
    jsonschema.validate(json.loads(text), SCHEMA)
    cut = tiny.generate("a", SamplingParams(temperature=1.0, seed=3, max_tokens=5, json_schema=SCHEMA))[0]
    assert cut.outputs[0].finish_reason == "length" and len(cut.outputs[0].token_ids) == 5


def test_bad_json_schema_params():
    with pytest.raises(ValueError, match="pattern"):
        SamplingParams(json_schema={"type": "string", "pattern": "(?=a)b"})  # lookaround
    with pytest.raises(ValueError, match="not valid JSON"):
        SamplingParams(json_schema="{oops")
    with pytest.raises(TypeError, match="json_schema"):
        SamplingParams(json_schema=3)
    with pytest.raises(TypeError, match="JSON-serializable"):
        SamplingParams(json_schema={"type": "object", "default": object()})


def test_structured_output_needs_a_tokenizer(tmp_path):
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    llm = LLM(tiny_llama_dir(str(tmp_path / "m")), skip_tokenizer_init=True, kv_cache_bytes=1 << 20)
    with pytest.raises(ValueError, match="tokenizer"):
        llm.generate({"prompt_token_ids": [5, 6]}, SamplingParams(json_schema={"type": "integer"}))
    assert not llm.engine.has_unfinished_requests()


@pytest.fixture(scope="module")
def smollm2():
    from infercore.models import resolve_model

    try:
        resolve_model("smollm2")
    except ValueError:
        pytest.skip("SmolLM2 is not available: run `infercore models pull smollm2`")
    return LLM("smollm2")


CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Denver", "Hanoi", "Perth", "Quito", "Riga"]


def tool_prompts() -> list[str]:
    ps = []
    for i, c in enumerate(CITIES):
        ps.append(f"What's the weather in {c} in {'celsius' if i % 2 else 'fahrenheit'}?")
        ps.append(f"Please add {i * 7 + 3} and {i * 13 + 1}.")
        ps.append(f"Is it raining in {c} right now?")
        ps.append(f"What is {i + 2} plus {i * 3}?")
        ps.append(f"Tell me a fun fact about {c}.")
    return ps


@pytest.mark.slow
def test_smollm2_tool_agent_calls_are_always_valid(smollm2):
    """The ToolAgent's own system prompt and call schema, 50 prompts in one batch: every reply is
    a schema-valid call the agent can execute (no parse or argument errors)."""
    from infercore.chains import ToolAgent, tool

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"]) -> str:
        """Current weather. Args: city: the city name. unit: temperature unit."""
        return f"18 degrees {unit} in {city}"

    @tool
    def add(a: float, b: float) -> float:
        """Adds two numbers."""
        return a + b

    # answers up to 300 characters: every token adds >= 1 byte, so 400 tokens always finish the JSON
    agent = ToolAgent("assistant", smollm2, [get_weather, add], params={"max_tokens": 400}, answer_max_chars=300)
    assert agent.constrained
    prompts = tool_prompts()
    assert len(prompts) == 50
    convs = [[{"role": "system", "content": agent.system}, {"role": "user", "content": p}] for p in prompts]
    outs = smollm2.chat(convs, agent.params)
    calls = 0
    for o in outs:
        c = o.outputs[0]
        assert c.finish_reason == "stop", c.text
        jsonschema.validate(json.loads(c.text), agent.call_schema)
        kind, obs = agent.execute(c.text)
        assert not str(obs).startswith("error:"), (c.text, obs)
        calls += kind == "observation"
    assert calls >= 10, "the model should call the tools for some of the prompts"
