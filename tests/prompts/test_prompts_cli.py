"""`infercore prompts ...` and `infercore trace show` end to end through main()."""

from __future__ import annotations

import json

from infercore.cli.main import main


def _run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prompts_cli_roundtrip(tmp_path, capsys):
    r = str(tmp_path / "reg")
    tf = tmp_path / "t.j2"
    tf.write_text("Translate to {{ lang }}: {{ text }}")
    code, out, err = _run(capsys, "prompts", "--registry", r, "register", "tr", "--template-file", str(tf),
                          "--var", "lang:str=French", "--var", "text:str", "--model-config",
                          '{"temperature": 0.1, "max_tokens": 32}', "-m", "first", "--alias", "production")  # fmt: skip
    assert code == 0, err
    assert "tr@v1" in out
    assert _run(capsys, "prompts", "--registry", r, "register", "tr", "--template", "To {{ lang }}: {{ text }}",
                "--var", "lang:str", "--var", "text:str", "-m", "second")[0] == 0  # fmt: skip
    code, out, _ = _run(capsys, "prompts", "--registry", r, "list")
    assert code == 0 and "tr  latest v2  (2 versions)  production=v1" in out
    code, out, _ = _run(capsys, "prompts", "--registry", r, "show", "tr", "production", "--json")
    assert json.loads(out)["version"] == 1 and json.loads(out)["model_config"]["max_tokens"] == 32
    code, out, _ = _run(capsys, "prompts", "--registry", r, "diff", "tr", "1", "2")
    assert "-Translate to {{ lang }}: {{ text }}" in out and "+To {{ lang }}: {{ text }}" in out
    assert 'variables.lang: {"type": "str", "default": "French"} -> {"type": "str"}' in out
    code, out, _ = _run(capsys, "prompts", "--registry", r, "render", "tr", "v1", "--set", "text=hello")
    assert code == 0 and out == "Translate to French: hello\n"
    code, out, err = _run(capsys, "prompts", "--registry", r, "render", "tr", "--set", "text=hi")
    assert code == 2 and "missing variable 'lang'" in err
    assert _run(capsys, "prompts", "--registry", r, "alias", "tr", "production", "2")[0] == 0
    code, out, _ = _run(capsys, "prompts", "--registry", r, "history", "tr")
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "alias" in lines[0] and "production -> v2" in lines[0]
    code, _, err = _run(capsys, "prompts", "--registry", r, "show", "nope")
    assert code == 1 and "no prompt named 'nope'" in err
    code, _, err = _run(capsys, "prompts", "--registry", str(tmp_path / "none"), "list")
    assert code == 2 and "not a prompt registry" in err


def test_prompts_cli_chat_template(tmp_path, capsys):
    r = str(tmp_path / "reg")
    tpl = json.dumps([{"role": "system", "content": "Be {{ tone }}."}, {"role": "user", "content": "{{ q }}"}])
    assert _run(capsys, "prompts", "--registry", r, "register", "c", "--chat", "--template", tpl)[0] == 0
    code, out, err = _run(capsys, "prompts", "--registry", r, "render", "c", "--vars", '{"tone": "brief", "q": "hi"}',
                          "--messages")  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    code, _, err = _run(capsys, "prompts", "--registry", r, "register", "c", "--chat", "--template", "[oops")
    assert code == 2 and "not valid JSON" in err
