"""PromptRegistry: immutable versions, aliases, history/diff, rendering, concurrency, corruption."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess

import pytest

from infercore.prompts import (
    PromptNotFoundError,
    PromptRegistry,
    PromptRenderError,
    RegistryCorruptionError,
    RegistryError,
)


@pytest.fixture
def reg(tmp_path):
    return PromptRegistry(tmp_path / "reg")


def _git(reg, *args):
    return subprocess.run(["git", *args], cwd=reg.path, capture_output=True, text=True, check=True).stdout


def test_register_creates_commits_and_versions_are_immutable(reg):
    v1 = reg.register("summarize", "Summarize: {{ text }}", variables={"text": "str"},
                      model_config={"temperature": 0.2, "max_tokens": 64}, message="first")  # fmt: skip
    v2 = reg.register("summarize", "Summarize in {{ n }} words: {{ text }}",
                      variables={"text": "str", "n": {"type": "int", "default": 20}}, message="shorter")  # fmt: skip
    assert (v1.version, v2.version) == (1, 2)
    assert reg.versions("summarize") == [1, 2]
    assert reg.get("summarize").version == 2
    # v1 is unchanged by registering v2, in the tree and in git
    again = PromptRegistry(reg.path).get("summarize", 1)
    assert again.template == "Summarize: {{ text }}" and again.model_config == {"temperature": 0.2, "max_tokens": 64}
    log = _git(reg, "log", "--format=%s")
    assert "summarize v2: shorter" in log and "summarize v1: first" in log
    assert _git(reg, "status", "--porcelain") == ""
    assert reg.verify() == []
    with pytest.raises(PromptNotFoundError):
        reg.get("summarize", 3)
    with pytest.raises(PromptNotFoundError):
        reg.get("nope")


def test_aliases_move_and_are_committed(reg):
    for i in range(3):
        reg.register("qa", f"v{i} {{{{ q }}}}", message=f"m{i}")
    reg.set_alias("qa", "production", 1)
    reg.set_alias("qa", "staging", "v3")
    assert reg.get("qa", alias="production").version == 1
    reg.set_alias("qa", "production", 2)
    assert reg.get("qa", alias="production").version == 2
    assert reg.resolve("qa", "staging").version == 3
    assert reg.aliases("qa") == {"production": 2, "staging": 3}
    reg.delete_alias("qa", "staging")
    with pytest.raises(PromptNotFoundError, match="staging"):
        reg.get("qa", alias="staging")
    with pytest.raises(ValueError, match="alias"):
        reg.set_alias("qa", "7", 1)
    with pytest.raises(PromptNotFoundError):
        reg.set_alias("qa", "canary", 9)
    with pytest.raises(ValueError, match="version, alias"):
        reg.get("qa", 1, alias="production")


def test_history_and_diff(reg):
    reg.register("p", "Hello {{ name }}\nBye", model_config={"temperature": 0.0}, message="one")
    reg.register("p", "Hi {{ name }}\nBye", model_config={"temperature": 0.7}, metadata={"owner": "ml"},
                 message="two", alias="production")  # fmt: skip
    reg.set_alias("p", "production", 1)
    h = reg.history("p")
    assert [(e["action"], e["version"], e["alias"]) for e in h] == [
        ("alias", 1, "production"), ("register", 2, "production"), ("register", 1, None)]
    d = reg.diff("p", 1, 2)
    assert "-Hello {{ name }}" in d and "+Hi {{ name }}" in d and " Bye" in d
    assert "model_config.temperature: 0.0 -> 0.7" in d
    assert 'metadata.owner: "<unset>" -> "ml"' in d
    assert reg.diff("p", 2, "v2") == ""


def test_render_text_and_chat_and_missing_variables(reg):
    pv = reg.register("greet", "Hello {{ name }}, you are {{ age }}{% if vip %} (VIP){% endif %}",
                      variables={"name": "str", "age": "int", "vip": {"type": "bool", "default": False}})  # fmt: skip
    assert pv.render(name="Ann", age=30) == "Hello Ann, you are 30"
    assert pv.render({"name": "Bo", "age": 5, "vip": True}) == "Hello Bo, you are 5 (VIP)"
    assert pv.render_messages(name="Ann", age=1) == [{"role": "user", "content": "Hello Ann, you are 1"}]
    with pytest.raises(PromptRenderError, match="missing variable 'age'"):
        pv.render(name="Ann")
    with pytest.raises(ValueError, match="expected int"):
        pv.render(name="Ann", age="thirty")
    with pytest.raises(ValueError, match="unknown variables"):
        pv.render(name="Ann", age=3, extra=1)
    chat = reg.register("chat", [{"role": "system", "content": "You are {{ persona }}."},
                                 {"role": "user", "content": "{{ question }}"}])  # fmt: skip
    assert chat.variables == {"persona": {"type": "any"}, "question": {"type": "any"}}
    msgs = chat.render_messages(persona="terse", question="2+2?")
    assert msgs == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"}]
    # StrictUndefined inside the template: attribute of a missing key
    pv2 = reg.register("strict", "{{ user.name }}", variables={"user": "dict"})
    with pytest.raises(ValueError, match="name"):
        pv2.render(user={})


def test_bad_arguments_name_the_argument(reg):
    with pytest.raises(ValueError, match="undeclared variables"):
        reg.register("x", "{{ a }} {{ b }}", variables={"a": "str"})
    with pytest.raises(ValueError, match="name"):
        reg.register("../evil", "t")
    with pytest.raises(ValueError, match="template"):
        reg.register("x", "{% if %}")
    with pytest.raises(ValueError, match="model_config"):
        reg.register("x", "t", model_config={"temprature": 1})
    with pytest.raises(ValueError, match="temperature"):
        reg.register("x", "t", model_config={"temperature": -1})
    with pytest.raises(TypeError, match="template"):
        reg.register("x", 42)
    with pytest.raises(ValueError, match="type"):
        reg.register("x", "{{ a }}", variables={"a": "complex"})
    # sandbox: attribute escapes are refused at render time
    pv = reg.register("evil", "{{ s.__class__ }}", variables={"s": "str"})
    with pytest.raises(ValueError, match="unsafe"):
        pv.render(s="a")
    assert reg.versions("x") == []  # nothing half-registered by the failures above


def _worker(path, wid, n):
    reg = PromptRegistry(path)
    for i in range(n):
        reg.register("shared", f"writer {wid} item {i}: {{{{ x }}}}", message=f"w{wid}-{i}")
        reg.register(f"own-{wid}", f"{i}", message=f"own {i}")


def test_concurrent_registration_from_processes_loses_nothing(tmp_path):
    path = str(tmp_path / "reg")
    PromptRegistry(path)
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(path, w, 6)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reg = PromptRegistry(path)
    assert reg.versions("shared") == list(range(1, 25))
    seen = {reg.get("shared", v).template for v in range(1, 25)}
    assert seen == {f"writer {w} item {i}: {{{{ x }}}}" for w in range(4) for i in range(6)}
    for w in range(4):
        assert [reg.get(f"own-{w}", v).template for v in reg.versions(f"own-{w}")] == [str(i) for i in range(6)]
    assert reg.verify() == []
    assert len(_git(reg, "log", "--format=%H").split()) == 1 + 48


def test_corrupted_entries_are_reported(reg):
    reg.register("c", "ok {{ a }}")
    reg.register("c", "second {{ a }}")
    f1 = f"{reg.path}/prompts/c/v1.json"
    doc = json.loads(open(f1).read())
    doc["template"] = "tampered {{ a }}"
    open(f1, "w").write(json.dumps(doc))
    with pytest.raises(RegistryCorruptionError, match="sha256"):
        PromptRegistry(reg.path).get("c", 1)
    assert any("v1.json" in p for p in reg.verify())
    f2 = f"{reg.path}/prompts/c/v2.json"
    open(f2, "wb").write(open(f2, "rb").read()[:40])  # truncated
    with pytest.raises(RegistryCorruptionError, match="not valid JSON"):
        PromptRegistry(reg.path).get("c", 2)
    open(f"{reg.path}/prompts/c/aliases.json", "w").write('{"production": "x"}')
    with pytest.raises(RegistryCorruptionError, match="aliases"):
        reg.get("c", alias="production")
    # the next write restores the committed state before writing
    reg.register("c", "third {{ a }}")
    assert reg.get("c", 1).template == "ok {{ a }}" and reg.versions("c") == [1, 2, 3]


def test_failed_write_leaves_no_partial_version(reg, monkeypatch):
    reg.register("f", "one")
    real = reg._git

    def failing(*args, **kw):
        if args and args[0] == "commit":
            raise RegistryError("simulated commit failure")
        return real(*args, **kw)

    monkeypatch.setattr(reg, "_git", failing)
    with pytest.raises(RegistryError):
        reg.register("f", "two")
    monkeypatch.setattr(reg, "_git", real)
    assert reg.versions("f") == [1]
    assert _git(reg, "status", "--porcelain") == ""
    assert reg.register("f", "two").version == 2


def test_open_without_create(tmp_path):
    with pytest.raises(ValueError, match="path"):
        PromptRegistry(tmp_path / "missing", create=False)


def test_next_writer_recovers_what_a_crashed_writer_left(reg):
    reg.register("r", "one")
    reg.register("r", "two")
    import os

    # a writer killed after its commit but before the file reached the tree, and one killed mid-rename
    os.unlink(f"{reg.path}/prompts/r/v2.json")
    open(f"{reg.path}/prompts/r/.tmp-abc", "w").write("{")
    assert reg.versions("r") == [1]
    assert reg.register("r", "three").version == 3  # recovery restores v2 first: no version number reused
    assert reg.versions("r") == [1, 2, 3] and reg.get("r", 2).template == "two"
    assert not os.path.exists(f"{reg.path}/prompts/r/.tmp-abc") and reg.verify() == []


def test_set_alias_to_where_it_points_is_a_no_op(reg):
    reg.register("n", "one")
    reg.set_alias("n", "production", 1, reason="first")
    head, hist = _git(reg, "rev-parse", "HEAD"), reg.history("n")
    reg.set_alias("n", "production", 1)  # was a RegistryError: git commit with nothing to commit
    reg.set_alias("n", "production", "v1", reason="again")
    assert _git(reg, "rev-parse", "HEAD") == head and reg.history("n") == hist
    assert reg.aliases("n") == {"production": 1} and _git(reg, "status", "--porcelain") == ""


def test_long_commit_messages_go_through_stdin(reg):
    reg.register("n", "one")
    reg.register("n", "two")
    reason = "why " * 250_000  # 1 MB: past the argument-list limit that `git commit -m` hit
    reg.set_alias("n", "production", 2, reason=reason)
    assert reg.aliases("n") == {"production": 2} and reg.history("n")[0]["reason"] == ("why " * 50).strip()
    assert reason.strip() in _git(reg, "log", "-1", "--format=%B")
    with pytest.raises(ValueError, match="reason"):
        reg.set_alias("n", "production", 1, reason="a\x00b")
    with pytest.raises(ValueError, match="message"):
        reg.register("n", "three", message="a\x00b")
    assert reg.aliases("n") == {"production": 2} and reg.versions("n") == [1, 2]


@pytest.mark.parametrize("kw, exc, match", [
    ({"model_config": {"temperature": float("nan")}}, ValueError, r"model_config\['temperature'\]"),
    ({"model_config": {"temperature": float("inf")}}, ValueError, r"model_config\['temperature'\]"),
    ({"model_config": {"top_p": float("nan")}}, ValueError, "model_config"),
    ({"metadata": {"a": float("nan")}}, ValueError, "metadata"),
    ({"metadata": {"a": [1.0, float("-inf")]}}, ValueError, "metadata"),
    ({"metadata": {"a": object()}}, TypeError, "metadata"),
])  # fmt: skip
def test_register_refuses_non_finite_numbers(reg, kw, exc, match):
    with pytest.raises(exc, match=match):
        reg.register("n", "one", **kw)
    assert reg.versions("n") == []


def test_registry_path_is_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a '' path was taken as the current directory
    with pytest.raises(ValueError, match="path"):
        PromptRegistry("")
    with pytest.raises(TypeError, match="path"):
        PromptRegistry(3)
    with pytest.raises(ValueError, match="path"):
        PromptRegistry(str(tmp_path / "r\x00"))
    assert list(tmp_path.iterdir()) == []
