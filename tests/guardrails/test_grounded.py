"""Groundedness output rail: unsupported sentences are flagged, removed or block, scored like the
RAG metrics (evals.rag.support_matrix at GROUNDED_THRESHOLD)."""

from __future__ import annotations

import pytest

from infercore.evals.rag import GROUNDED_THRESHOLD, support_matrix
from infercore.guardrails import GroundednessRail, Guard

CONTEXTS = [
    "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
    "Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
]
ANSWER = ("The Eiffel Tower was completed in 1889 for the World's Fair. "
          "Bananas are an excellent source of potassium for athletes. "
          "Mount Fuji is Japan's highest mountain.")


def test_flag_marks_the_unsupported_sentence(minilm):
    d = GroundednessRail(embedder=minilm).check(ANSWER, CONTEXTS)
    assert d.status == "passed" and len(d.violations) == 1
    s, e = d.violations[0].span
    assert ANSWER[s:e].startswith("Bananas")
    assert d.violations[0].score < GROUNDED_THRESHOLD
    # the same number the RAG metrics compute for that sentence
    ref = support_matrix([ANSWER[s:e].strip()], CONTEXTS, minilm).max()
    assert abs(ref - d.violations[0].score) < 1e-5


def test_remove_and_block_through_a_guard(minilm):
    g = Guard(output_rails=[GroundednessRail(action="remove", embedder=minilm)])
    r = g.check_output(ANSWER, contexts=CONTEXTS)
    assert r.status == "modified" and "Bananas" not in r.text
    assert "1889" in r.text and "Fuji" in r.text
    gb = Guard.from_config({"output_rails": [{"type": "groundedness", "action": "block"}]})
    assert gb.check_output(ANSWER, contexts=CONTEXTS).blocked
    assert gb.check_output("Mount Fuji is the highest mountain in Japan.", contexts=CONTEXTS).status == "passed"
    assert gb.check_output(ANSWER).status == "passed"  # no contexts: nothing to check against


def test_contexts_objects_and_bad_input(minilm):
    class Hit:
        def __init__(self, text):
            self.text = text

    rail = GroundednessRail(action="remove", embedder=minilm)
    d = rail.check("Bananas are purple and grow on the moon.", [Hit(c) for c in CONTEXTS])
    assert d.status == "modified" and d.text == ""
    with pytest.raises(TypeError, match="contexts"):
        rail.check(ANSWER, 42)
    with pytest.raises(TypeError, match=r"contexts\[1\]"):
        rail.check(ANSWER, ["ok", 3])
    with pytest.raises(ValueError, match="action"):
        GroundednessRail(action="shout", embedder=minilm)
    with pytest.raises(ValueError, match="threshold"):
        GroundednessRail(threshold=1.5, embedder=minilm)


def test_text_must_be_a_str_without_a_model():
    class Emb:
        def encode(self, texts, **kw):
            import numpy as np

            return np.ones((len(texts), 4), np.float32) / 2

    rail = GroundednessRail(embedder=Emb())
    with pytest.raises(TypeError, match="text: expected str"):
        rail.check(3, ["a context"])
    with pytest.raises(ValueError, match="threshold"):
        GroundednessRail(threshold=float("nan"), embedder=Emb())
