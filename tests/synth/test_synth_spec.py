from __future__ import annotations

import base64
from collections import Counter

import pytest

from infercore.synth import Spec, generate, write_jsonl
from infercore.synth.transforms import luhn


def test_rows_follow_the_spec(spec_path):
    rows = generate(spec_path, 400)
    assert [r["id"] for r in rows[:2]] == ["toy-000000", "toy-000001"]
    for r in rows:
        s = r["slots"]
        assert r["lang"] == s["lang"] and r["label"] == (s["lang"] == "ja") and r["chars"] == 3
        assert s["n_items"] in range(1, 6) and 1.0 <= s["price"] <= 100 and round(s["price"], 2) == s["price"]
        assert len(s["tags"]) in (1, 2, 3) and len(set(s["tags"])) == len(s["tags"]) and set(s["tags"]) <= set("abcd")
        assert s["source"] == "synth"
        if s["lang"] == "ja":
            assert s["intent"] in ("返金", "ログイン") and r["text"].endswith(f"{s['n_items']}個")
        else:
            assert s["intent"] in ("refund", "login", "shipping")
    langs = Counter(r["lang"] for r in rows)
    assert 0.65 < langs["en"] / 400 < 0.85  # weights 3:1
    en = [r for r in rows if r["lang"] == "en"]
    long_share = sum(r["text"].startswith("I need help") for r in en) / len(en)
    assert 0.55 < long_share < 0.8  # template weights 2:1


def test_same_seed_same_bytes_different_seed_differs(spec_path, tmp_path):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    write_jsonl(generate(spec_path, 300, seed=5), a)
    write_jsonl(generate(Spec.from_yaml(spec_path), 300, seed=5), b)
    write_jsonl(generate(spec_path, 300, seed=6), c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    # the spec's own seed is the default, and example i does not depend on n
    assert generate(spec_path, 50) == generate(spec_path, 200)[:50]
    assert generate(spec_path, 10) == generate(spec_path, 10, seed=11)


def test_transforms():
    spec = Spec.from_yaml("""
name: t
slots:
  w: {type: const, value: "ignore the rules"}
  o: {type: categorical, values: [plain, rot13]}
templates: ["{{ w | b64 }}|{{ w | rot13 }}|{{ w | fullwidth }}|{{ w | obfuscate(o) }}|{{ '411111111111111' | luhn }}"]
""", is_text=True)
    for r in generate(spec, 20):
        b, rot, full, ob, card = r["text"].split("|")
        assert base64.b64decode(b).decode() == "ignore the rules"
        assert rot == "vtaber gur ehyrf" and full.startswith("ｉｇｎｏｒｅ")
        assert ob == ("ignore the rules" if r["slots"]["o"] == "plain" else rot)
        assert card == "4111111111111111"
    # Luhn check digits of known card numbers
    assert luhn("7992739871") == "79927398713"
    assert luhn("453201511283036") == "4532015112830366"


def test_malformed_yaml_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nslots:\n  a: {type: int, min: 1\ntemplates: ['{{ a }}']\n")
    with pytest.raises(ValueError, match=r"line \d+.*malformed YAML"):
        Spec.from_yaml(p)


def test_semantic_errors_name_path_and_line(spec_text):
    SPEC = spec_text
    bad_type = SPEC.replace("type: int, min: 1, max: 5", "type: integer, min: 1, max: 5")
    with pytest.raises(ValueError, match=r"slots\.n_items\.type \(line 6\)"):
        Spec.from_yaml(bad_type, is_text=True)
    with pytest.raises(ValueError, match=r"slots\.lang\.weights \(line 4\).*2 weights"):
        Spec.from_yaml(SPEC.replace("weights: [3, 1]", "weights: [3]"), is_text=True)
    with pytest.raises(ValueError, match=r"colour \(line 20\): unknown key"):
        Spec.from_yaml(SPEC + "colour: red\n", is_text=True)
    with pytest.raises(ValueError, match=r"'nope' is not a slot declared before"):
        Spec.from_yaml(SPEC.replace("by: lang", "by: nope"), is_text=True)
    with pytest.raises(ValueError, match=r"min 9 > max 5"):
        Spec.from_yaml(SPEC.replace("min: 1, max: 5", "min: 9, max: 5"), is_text=True)


def test_unknown_slot_in_template_or_field_is_an_error(spec_text):
    SPEC = spec_text
    with pytest.raises(ValueError, match=r"templates\.0\.template \(line 12\): unknown slot\(s\) \['intnet'\]"):
        Spec.from_yaml(SPEC.replace("help with {{ intent }}", "help with {{ intnet }}"), is_text=True)
    with pytest.raises(ValueError, match=r"fields\.lang.*unknown slot\(s\) \['language'\]"):
        Spec.from_yaml(SPEC.replace('lang: "{{ lang }}"', 'lang: "{{ language }}"'), is_text=True)
    with pytest.raises(ValueError, match=r"unknown slot 'zzz'"):
        Spec.from_yaml(SPEC.replace("label: {slot: label}", "label: {slot: zzz}"), is_text=True)
    with pytest.raises(ValueError, match=r"when\.colour.*unknown slot"):
        Spec.from_yaml(SPEC.replace("when: {lang: ja}", "when: {colour: ja}"), is_text=True)


def test_bad_n_and_seed(spec_path):
    for n in (0, -3):
        with pytest.raises(ValueError, match="n: expected a positive"):
            generate(spec_path, n)
    with pytest.raises(TypeError, match="n: expected an int"):
        generate(spec_path, 2.5)
    with pytest.raises(ValueError, match="n: at most"):  # ran until the OOM killer ended it
        generate(spec_path, 10**12)
    with pytest.raises(TypeError, match="seed"):
        generate(spec_path, 2, seed="x")
    with pytest.raises(TypeError, match="spec"):
        generate(42, 2)
    with pytest.raises(ValueError, match="cannot read"):
        generate("/nonexistent/spec.yaml", 2)


def test_no_matching_template_and_sandbox():
    spec = Spec.from_yaml("name: t\nslots: {a: {type: categorical, values: [x, y]}}\n"
                          "templates: [{template: hi, when: {a: x}}]\n", is_text=True)
    with pytest.raises(ValueError, match="none matches"):
        generate(spec, 20)
    evil = Spec.from_yaml("name: t\nslots: {a: {type: const, value: 1}}\n"
                          "templates: [\"{{ a.__class__.__mro__ }}\"]\n", is_text=True)
    with pytest.raises(ValueError, match="render failed"):
        generate(evil, 1)
