"""Step / Sequential / Router / ToolAgent on a tiny random Llama; run records; spans and attributes."""

from __future__ import annotations

import io
import json
import zlib
from typing import Literal

import numpy as np
import pytest

from infercore import SamplingParams
from infercore.chains import (
    ChainError,
    ConsoleExporter,
    EmbeddingClassifier,
    InMemoryExporter,
    JSONLExporter,
    KeywordClassifier,
    LLMClassifier,
    NullTracer,
    Router,
    Sequential,
    Step,
    ToolAgent,
    Tracer,
    inline_prompt,
    tool,
)
from infercore.chains.tracing import format_tree, load_spans
from infercore.cli.main import main
from infercore.prompts import PromptRegistry


@pytest.fixture
def reg(tmp_path):
    r = PromptRegistry(tmp_path / "reg")
    r.register("summ", "Summarize: {{ text }}", variables={"text": "str"},
               model_config={"model": "tiny", "temperature": 0.0, "max_tokens": 5})  # fmt: skip
    r.register("title", "Old title prompt: {{ summ }}", variables={"summ": "str"})
    r.register("title", "Title for: {{ summ }}", variables={"summ": "str"},
               model_config={"model": "tiny", "temperature": 0.7, "max_tokens": 3, "seed": 1})  # fmt: skip
    return r


def test_step_equals_bare_generate_and_records_versions(tiny_llm, reg, tmp_path):
    pv = reg.get("summ")
    step = Step("summ", pv, tiny_llm, parser=str.upper)
    log = tmp_path / "runs.jsonl"
    run = step.run({"text": "hello"}, run_log=log)
    bare = tiny_llm.generate("Summarize: hello", SamplingParams(temperature=0.0, max_tokens=5))[0].outputs[0]
    assert run.output == bare.text.upper() and run.state["summ"] == run.output
    (call,) = run.calls
    assert call.prompt == "summ@v1" and call.model == "tiny" and call.params["max_tokens"] == 5
    assert call.output_tokens == len(bare.token_ids) and call.input_tokens == len("Summarize: hello")
    rec = json.loads(log.read_text())
    assert rec["chain"] == "summ" and rec["chain_version"] == "1" and rec["calls"][0]["prompt"] == "summ@v1"
    with pytest.raises(ChainError, match="missing variable 'text'"):
        step.run({})
    with pytest.raises(ValueError, match="params"):
        Step("x", pv, tiny_llm, params={"temprature": 1.0})


def test_sequential_span_tree_and_genai_attributes(tiny_llm, reg, tmp_path):
    mem = InMemoryExporter()
    path = tmp_path / "trace.jsonl"
    tracer = Tracer([mem, JSONLExporter(path)])
    chain = Sequential("summarize-then-title", [Step("summ", reg.get("summ"), tiny_llm),
                                                Step("title", reg.get("title"), tiny_llm)], version="2.1")  # fmt: skip
    run = chain.run({"text": "a long text"}, tracer=tracer)
    assert [c.prompt for c in run.calls] == ["summ@v1", "title@v2"]
    assert run.output == run.state["title"] and run.calls[1].params["seed"] == 1
    assert sorted(s.name for s in mem.spans) == ["chain summarize-then-title", "text_completion tiny",
                                                 "text_completion tiny"]  # fmt: skip
    root = next(s for s in mem.spans if s.parent_span_id is None)
    kids = [s for s in mem.spans if s.parent_span_id == root.span_id]
    assert len(mem.spans) == 3 and len(kids) == 2 and {s.trace_id for s in mem.spans} == {root.trace_id}
    assert root.attributes["gen_ai.operation.name"] == "chain"
    assert root.attributes["infercore.chain.version"] == "2.1" and run.trace_id == root.trace_id
    a, b = sorted(kids, key=lambda s: s.start_ns)
    assert a.attributes["gen_ai.operation.name"] == "text_completion"
    assert a.attributes["gen_ai.request.model"] == "tiny"
    assert a.attributes["gen_ai.request.temperature"] == 0.0 and b.attributes["gen_ai.request.temperature"] == 0.7
    assert a.attributes["gen_ai.usage.input_tokens"] == run.calls[0].input_tokens
    assert b.attributes["gen_ai.usage.output_tokens"] == run.calls[1].output_tokens
    assert (a.attributes["infercore.prompt.name"], b.attributes["infercore.prompt.version"]) == ("summ", 2)
    assert root.start_ns <= a.start_ns <= a.end_ns <= b.start_ns <= b.end_ns <= root.end_ns
    assert all(s.status == "OK" for s in mem.spans)
    # JSONL round trip and `infercore trace show`
    tree = format_tree(load_spans(path))
    lines = tree.splitlines()
    assert lines[0] == f"trace {root.trace_id}" and lines[1].startswith("  chain summarize-then-title")
    assert lines[2].startswith("    text_completion tiny") and "prompt.name=summ" in lines[2]
    assert "usage.output_tokens=" in lines[3] and "prompt.version=2" in lines[3]
    assert main(["trace", "show", str(path)]) == 0
    buf = io.StringIO()
    Tracer([ConsoleExporter(buf)])
    with Tracer([ConsoleExporter(buf)]).span("x", {"gen_ai.operation.name": "chat"}):
        pass
    assert "gen_ai.operation.name=chat" in buf.getvalue()


def test_failed_step_marks_span_error(tiny_llm, reg):
    mem = InMemoryExporter()

    def bad_parser(text):
        raise ValueError("not a number")

    chain = Sequential("c", [Step("summ", reg.get("summ"), tiny_llm, parser=bad_parser)])
    with pytest.raises(ChainError, match="output parser failed"):
        chain.run({"text": "x"}, tracer=Tracer([mem]))
    root = next(s for s in mem.spans if s.parent_span_id is None)
    assert root.status == "ERROR" and "not a number" in root.status_message


def test_router_keyword_embedding_and_llm_classifiers(tiny_llm, reg):
    math_step = Step("math", inline_prompt("math", "Solve: {{ input }}", {"input": "str"}, {"max_tokens": 2}), tiny_llm)
    chat_step = Step("chat", inline_prompt("chat", "Chat: {{ input }}", {"input": "str"}, {"max_tokens": 2}), tiny_llm)
    routes = {"math": math_step, "chat": chat_step}
    kw = Router("r", routes, KeywordClassifier({"math": ["sum", "integral"], "chat": ["hello"]}), default="chat")
    mem = InMemoryExporter()
    run = kw.run({"input": "what is the integral of x"}, tracer=Tracer([mem]))
    assert run.state["r.route"] == "math" and run.calls[0].step == "math"
    assert any(s.attributes.get("infercore.route") == "math" for s in mem.spans)
    assert kw.run({"input": "nothing matches"}).state["r.route"] == "chat"

    # embedding classifier with a real (bag-of-characters) encoder
    def encode(texts):
        out = np.zeros((len(texts), 128), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % 128] += 1.0
        return out

    emb = Router("e", routes, descriptions={"math": "numbers sum integral equation",
                                            "chat": "hello how are you friend"}, encode=encode)  # fmt: skip
    assert isinstance(emb.classifier, EmbeddingClassifier)
    assert emb.run({"input": "hello friend"}).state["e.route"] == "chat"
    assert emb.run({"input": "solve this equation sum"}).state["e.route"] == "math"
    # LLM classifier: the tiny model answers noise -> the default route, and the classifier call is recorded
    llm_router = Router("l", routes, LLMClassifier(tiny_llm, {"math": "arithmetic", "chat": "small talk"}),
                        default="chat")  # fmt: skip
    run = llm_router.run({"input": "2+2"})
    assert run.calls[0].step == "router" and run.state["l.route"] in ("math", "chat")
    assert run.calls[1].step == run.state["l.route"]
    with pytest.raises(ChainError, match="no default"):
        Router("n", routes, lambda s: "other").run({"input": "x"})
    with pytest.raises(ValueError, match="default"):
        Router("n", routes, lambda s: None, default="nope")


@tool
def add(a: int, b: int = 0) -> int:
    """Add two integers.

    Args:
        a: first addend
        b: second addend
    """
    return a + b


@tool(name="weather")
def get_weather(city: str, unit: Literal["c", "f"] = "c", days: list[int] | None = None) -> dict:
    """Weather for a city."""
    if city == "Atlantis":
        raise LookupError("no such city")
    return {"city": city, "temp": 21 if unit == "c" else 70}


def test_tool_schema_from_type_hints():
    assert add.schema == {"type": "function", "function": {"name": "add", "description": "Add two integers.",
                          "parameters": {"type": "object", "properties": {
                              "a": {"type": "integer", "description": "first addend"},
                              "b": {"type": "integer", "description": "second addend", "default": 0}},
                              "required": ["a"], "additionalProperties": False}}}  # fmt: skip
    p = get_weather.parameters
    assert p["properties"]["unit"] == {"enum": ["c", "f"], "default": "c"}
    assert p["properties"]["days"] == {"type": "array", "items": {"type": "integer"}, "default": None}
    assert p["required"] == ["city"] and get_weather.name == "weather"
    with pytest.raises(TypeError, match="type hint"):
        tool(lambda x: x, name="untyped")
    with pytest.raises(ValueError, match="expected integer"):
        add.validate({"a": "1"})
    with pytest.raises(ValueError, match="missing"):
        add.validate({"b": 1})


def test_agent_executes_tools_and_feeds_errors_back(tiny_llm):
    agent = ToolAgent("calc", tiny_llm, [add, get_weather], max_steps=3)
    assert agent.execute('sure: {"tool": "add", "arguments": {"a": 2, "b": 40}} done') == ("observation", "42")
    assert agent.execute('{"answer": "42"}') == ("answer", "42")
    kind, obs = agent.execute('{"tool": "weather", "arguments": {"city": "Atlantis"}}')
    assert kind == "observation" and obs == "error: tool weather raised LookupError: no such city"
    assert "unknown tool 'nope'" in agent.execute('{"tool": "nope"}')[1]
    assert "expected integer" in agent.execute('{"tool": "add", "arguments": {"a": "x"}}')[1]
    assert "not one of" in agent.execute('{"tool": "weather", "arguments": {"city": "P", "unit": "k"}}')[1]
    assert "no JSON object" in agent.execute("I think the answer is 4")[1]
    assert '"add"' in agent.system and '"integer"' in agent.system


def test_agent_loop_limits_and_spans_on_tiny_model(tiny_llm):
    mem = InMemoryExporter()
    agent = ToolAgent("calc", tiny_llm, [add], max_steps=3, params={"max_tokens": 4}, constrained=False)
    run = agent.run({"input": "what is 2+40?"}, tracer=Tracer([mem]))
    # random weights, unconstrained, never produce a valid call: every reply is fed back, then the
    # step limit stops the loop
    assert run.status == "max_steps" and run.output is None and len(run.calls) == 3
    inv = next(s for s in mem.spans if s.name == "invoke_agent calc")
    assert inv.attributes["gen_ai.operation.name"] == "invoke_agent" and inv.attributes["gen_ai.agent.name"] == "calc"
    assert inv.attributes["infercore.agent.stop"] == "max_steps" and inv.attributes["infercore.agent.steps"] == 3
    chats = [s for s in mem.spans if s.parent_span_id == inv.span_id]
    assert len(chats) == 3 and all(s.attributes["gen_ai.operation.name"] == "chat" for s in chats)
    # the time limit stops before the next model call
    slow = ToolAgent("slow", tiny_llm, [add], max_steps=1000, max_time_s=0.05, params={"max_tokens": 4},
                     constrained=False)  # fmt: skip
    r2 = slow.run({"input": "x"})
    assert r2.status == "timeout" and 1 <= len(r2.calls) < 1000
    with pytest.raises(ValueError, match="max_steps"):
        ToolAgent("a", tiny_llm, [add], max_steps=0)


def test_otel_bridge_mirrors_spans(tiny_llm, reg):
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exp = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exp))
    tracer = Tracer(otel_tracer=provider.get_tracer("test"))
    Sequential("c", [Step("summ", reg.get("summ"), tiny_llm)]).run({"text": "x"}, tracer=tracer)
    spans = exp.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    child = next(s for s in spans if s.parent is not None)
    assert child.parent.span_id == root.context.span_id and child.name == "text_completion tiny"
    assert child.attributes["gen_ai.request.model"] == "tiny" and child.attributes["gen_ai.usage.output_tokens"] >= 1


def test_constrained_agent_always_emits_valid_calls_even_from_random_weights(tiny_llm):
    import jsonschema

    agent = ToolAgent("calc", tiny_llm, [add, get_weather], max_steps=4,
                      params={"max_tokens": 400, "temperature": 1.0, "seed": 5})  # fmt: skip
    assert agent.constrained and agent.params.json_schema == agent.call_schema
    run = agent.run({"input": "what is 2+40?"})
    assert run.calls
    for call in run.calls:
        if call.finish_reason != "stop":
            continue  # cut by max_tokens inside a free-text answer
        reply = json.loads(call.text)
        jsonschema.validate(reply, agent.call_schema)
        _, obs = agent.execute(call.text)
        assert not obs.startswith(("error: no JSON", "error: unknown tool")) and "expected" not in obs, obs
    with pytest.raises(ValueError, match="response_prefix"):
        ToolAgent("p", tiny_llm, [add], response_prefix='{"', constrained=True)


def test_agent_response_prefix_starts_the_assistant_turn(tiny_llm):
    agent = ToolAgent("p", tiny_llm, [add], max_steps=1, params={"max_tokens": 3}, response_prefix='{"tool": "')
    run = agent.run({"input": "2+2"})
    msgs = [{"role": "system", "content": agent.system}, {"role": "user", "content": "2+2"}]
    expect = tiny_llm.tokenizer.encode(tiny_llm.render_chat(msgs) + '{"tool": "', add_special_tokens=False)
    assert run.calls[0].input_tokens == len(expect)
    bare = tiny_llm.generate({"prompt_token_ids": expect}, agent.params)[0].outputs[0].text
    assert run.calls[0].text == bare
    with pytest.raises(ValueError, match="response_prefix"):
        ToolAgent("p", tiny_llm, [add], response_prefix="")


def test_step_with_ab_test_and_rollout_selectors(tiny_llm, reg):
    from infercore.prompts import ABTest, Rollout

    reg.register("summ", "Briefly summarize: {{ text }}", variables={"text": "str"},
                 model_config={"model": "tiny", "max_tokens": 2})  # fmt: skip
    ab = ABTest(reg, "summ-ab", arms={"a": 1, "b": 2}, prompt="summ")
    step = Step("summ", ab, tiny_llm)
    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):
        run = step.run({"text": "x", "user_id": user})
        want = ab.prompt_for(user)
        assert run.calls[0].prompt == want.ref and run.calls[0].params["max_tokens"] == want.model_config["max_tokens"]
    ro = Rollout(reg, "summ", candidate=2, stable=1, stages=[0.5, 1.0])
    rstep = Step("summ", ro, tiny_llm)
    assert {rstep.run({"text": "x", "user_id": f"k{i}"}).calls[0].prompt for i in range(12)} == {"summ@v1", "summ@v2"}
    ro.rollback("bad outputs")
    assert {rstep.run({"text": "x", "user_id": f"k{i}"}).calls[0].prompt for i in range(6)} == {"summ@v1"}
    with pytest.raises(ChainError, match="request key"):
        step.run({"text": "x"})


def test_run_log_must_be_a_path_not_a_file_descriptor(tiny_llm, reg, tmp_path):
    import os

    step = Step("summ", reg.get("summ"), tiny_llm)
    keep = tmp_path / "keep.txt"
    with open(keep, "w") as fh:
        fd = fh.fileno()
        with pytest.raises(TypeError, match="run_log"):
            step.run({"text": "x"}, run_log=fd)  # open(int) would write into that fd and close it
        os.fstat(fd)  # still open
    assert keep.read_text() == ""
    for bad in (True, b"runs.jsonl"):
        with pytest.raises(TypeError, match="run_log"):
            step.run({"text": "x"}, run_log=bad)
    for bad in ("", "a\0b"):
        with pytest.raises(ValueError, match="run_log"):
            step.run({"text": "x"}, run_log=bad)
    with pytest.raises(TypeError, match="path"):
        JSONLExporter(3)
    with pytest.raises(ValueError, match="path"):
        JSONLExporter("")
    with pytest.raises(TypeError, match="path"):
        load_spans(0)  # would read stdin, then close it
    for missing in (tmp_path / "nope.jsonl", tmp_path):  # were FileNotFoundError / IsADirectoryError tracebacks
        with pytest.raises(ValueError, match="cannot read"):
            load_spans(missing)
    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="UTF-8"):
        load_spans(tmp_path / "bin.jsonl")


def test_sampling_config_and_step_arguments_are_typed_errors(tiny_llm, reg):
    from infercore.chains import sampling_from_config

    for bad in (None, "temperature=0", [("temperature", 0.0)]):
        with pytest.raises(TypeError, match="model_config"):
            sampling_from_config(bad)
    with pytest.raises(TypeError, match="overrides"):
        sampling_from_config({}, [1])
    pv = reg.get("summ")
    with pytest.raises(TypeError, match="params"):
        Step("s", pv, tiny_llm, params=["temperature"])
    with pytest.raises(TypeError, match="output_key"):
        Step("s", pv, tiny_llm, output_key=3)
    with pytest.raises(TypeError, match="key_field"):
        Step("s", pv, tiny_llm, key_field=None)
    with pytest.raises(TypeError, match="model"):
        Step("s", pv, tiny_llm, model=3)


def test_span_attributes_must_be_a_mapping():
    mem = InMemoryExporter()
    tracer = Tracer([mem])
    for t in (tracer, NullTracer()):
        with pytest.raises(TypeError, match="attributes"), t.span("x", attributes="abc"):
            pass
    assert mem.spans == []  # no half-made span was exported
    with tracer.span("ok", {"a": 1}) as sp:
        with pytest.raises(TypeError, match="attrs"):
            sp.set_attributes([("a", 1)])
        with pytest.raises(TypeError, match="attributes"):
            sp.add_event("e", "abc")
    with pytest.raises(TypeError, match="exporters"):
        Tracer(mem)


def test_tool_validate_rejects_none_unless_the_type_allows_it():
    with pytest.raises(ValueError, match="'a': expected integer, got NoneType"):
        add.validate({"a": None})
    with pytest.raises(ValueError, match="'b': expected integer"):
        add.validate({"a": 1, "b": None})  # b: int = 0 is not Optional
    assert get_weather.validate({"city": "P", "days": None}) == {"city": "P", "days": None}

    @tool
    def f(a: int | None, xs: list[int | None], ys: list[int], u: int | str, z: int = None) -> int:  # noqa: RUF013
        return 0

    assert f.parameters["required"] == ["xs", "ys", "u"]
    assert f.parameters["properties"]["xs"]["items"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert f.validate({"a": None, "xs": [1, None], "ys": [1], "u": "x", "z": None})
    with pytest.raises(ValueError, match=r"'ys\[1\]': expected integer"):
        f.validate({"xs": [], "ys": [1, None], "u": 1})
    with pytest.raises(ValueError, match=r"'u'.*none of the allowed types"):
        f.validate({"xs": [], "ys": [], "u": None})


def test_agent_key_arguments_are_checked_at_construction(tiny_llm):
    for bad in (None, 3, ["input"]):
        with pytest.raises(TypeError, match="input_key"):
            ToolAgent("a", tiny_llm, [add], input_key=bad)
    with pytest.raises(ValueError, match="input_key"):
        ToolAgent("a", tiny_llm, [add], input_key="")
    with pytest.raises(ValueError, match="name"):
        ToolAgent(None, tiny_llm, [add])
    with pytest.raises(TypeError, match="tools"):
        ToolAgent("a", tiny_llm, add)
    with pytest.raises(TypeError, match="params"):
        ToolAgent("a", tiny_llm, [add], params="max_tokens=3")
    with pytest.raises(TypeError, match="system"):
        ToolAgent("a", tiny_llm, [add], system=3)


def test_router_and_classifier_arguments(tiny_llm):
    step = Step("s", inline_prompt("p", "Q: {{ input }}", {"input": "str"}, {"max_tokens": 1}), tiny_llm)
    with pytest.raises(ValueError, match="keywords"):
        KeywordClassifier({"math": "sum"})  # a str would match each of its characters
    with pytest.raises(TypeError, match="field"):
        KeywordClassifier({"math": ["sum"]}, field=None)

    def encode(texts):
        return np.ones((len(texts), 4), np.float32)

    with pytest.raises(ValueError, match="min_similarity"):
        EmbeddingClassifier(encode, {"s": "x"}, min_similarity=float("nan"))  # would never pick a route
    with pytest.raises(TypeError, match=r"descriptions\['s'\]"):
        EmbeddingClassifier(encode, {"s": 3})
    with pytest.raises(ValueError, match="routes"):
        Router("r", None, descriptions={"s": "x"}, encode=encode)
    with pytest.raises(TypeError, match="descriptions"):
        Router("r", {"s": step}, descriptions=["s"], encode=encode)
    with pytest.raises(ValueError, match="name"):
        Router(None, {"s": step}, lambda s: "s")
