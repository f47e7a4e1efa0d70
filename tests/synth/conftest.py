from __future__ import annotations

import pytest

SPEC = """\
name: toy
seed: 11
slots:
  lang: {type: categorical, values: [en, ja], weights: [3, 1]}
  intent: {type: categorical, by: lang, values: {en: [refund, login, shipping], ja: [返金, ログイン]}}
  n_items: {type: int, min: 1, max: 5}
  price: {type: float, min: 1, max: 100, round: 2}
  tags: {type: sample, values: [a, b, c, d], k: [1, 3]}
  label: {type: map, from: lang, map: {en: 0, ja: 1}}
  source: {type: const, value: synth}
templates:
  - {template: "I need help with {{ intent }} for {{ n_items }} items costing {{ price }}.",
     weight: 2, when: {lang: en}}
  - {template: "{{ intent | leet }} please ({{ tags | join(',') }})", when: {lang: en}}
  - {template: "{{ intent }}をお願いします。{{ n_items }}個", when: {lang: ja}}
fields:
  label: {slot: label}
  lang: "{{ lang }}"
  chars: 3
"""


@pytest.fixture()
def spec_text():
    return SPEC


@pytest.fixture()
def spec_path(tmp_path):
    p = tmp_path / "toy.yaml"
    p.write_text(SPEC, encoding="utf-8")
    return p


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    pytest.importorskip("safetensors")
    from infercore.benchmarks.bench_chains import tiny_llama_dir

    from infercore import LLM

    d = tiny_llama_dir(str(tmp_path_factory.mktemp("tiny") / "m"))
    return LLM(d, kv_cache_dtype="float32", kv_cache_bytes=1 << 22)
