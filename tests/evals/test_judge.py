from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infercore.evals.judge import Judge, PairResult, cohen_kappa, combine_swapped, parse_rating, parse_verdict


def test_kappa_hand_computed_binary():
    # 10 items: both "yes" 4, both "no" 3, r1 yes/r2 no 2, r1 no/r2 yes 1
    r1 = ["y"] * 4 + ["n"] * 3 + ["y"] * 2 + ["n"]
    r2 = ["y"] * 4 + ["n"] * 3 + ["n"] * 2 + ["y"]
    # p_o = 7/10; r1 yes 6/10, r2 yes 5/10 -> p_e = .6*.5 + .4*.5 = .5; kappa = (.7-.5)/.5 = .4
    assert cohen_kappa(r1, r2) == pytest.approx(0.4)


def test_kappa_hand_computed_three_labels():
    r1 = ["a", "a", "b", "b", "c", "c"]
    r2 = ["a", "b", "b", "b", "c", "a"]
    # p_o = 4/6; r1 freq a,b,c = 2,2,2; r2 = 2,3,1 -> p_e = (4 + 6 + 2) / 36 = 1/3; kappa = (2/3-1/3)/(2/3) = .5
    assert cohen_kappa(r1, r2) == pytest.approx(0.5)


def test_kappa_perfect_opposite_and_degenerate():
    assert cohen_kappa([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa(["g", "g"], ["g", "g"]))  # p_e = 1: undefined
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa([1], [1, 0])
    with pytest.raises(ValueError, match="at least one"):
        cohen_kappa([], [])


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=40))
def test_kappa_symmetric_and_bounded(pairs):
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    k = cohen_kappa(a, b)
    if not math.isnan(k):
        assert -1.0 - 1e-9 <= k <= 1.0 + 1e-9
        assert k == pytest.approx(cohen_kappa(b, a))


def test_parse_rating():
    assert parse_rating("The answer is fine. Rating: [[4]]") == 4.0
    assert parse_rating("Rating: 5: correct, complete and clear") == 5.0
    assert parse_rating("score: 2/5") == 2.0
    assert parse_rating("[[2]] then on reflection [[3]]") == 3.0  # the last one counts
    assert parse_rating("Rating: [[N]]") is None
    assert parse_rating("Rating: [[9]]") is None  # out of the 1..5 scale
    assert parse_rating("Rating: 12 times 12 is 144") is None
    assert parse_rating("I cannot judge this.") is None
    assert parse_rating(None) is None


def test_parse_verdict():
    assert parse_verdict("Verdict: [[A]]") == "A"
    assert parse_verdict("... so [[B]]") == "B"
    assert parse_verdict("[[C]]") == "tie"
    assert parse_verdict("[[tie]]") == "tie"
    assert parse_verdict("Winner: B") == "B"
    assert parse_verdict("[[A]] or maybe [[B]]") is None  # names both
    assert parse_verdict("A: 4\nB: 5") is None
    assert parse_verdict("") is None


def test_combine_swapped_table():
    # first: answer 1 shown as A; second: answer 1 shown as B
    assert combine_swapped("A", "B") == "A"  # answer 1 wins in both orders
    assert combine_swapped("B", "A") == "B"  # answer 2 wins in both orders
    assert combine_swapped("A", "A") == "tie"  # always picks position A: position bias -> tie
    assert combine_swapped("B", "B") == "tie"
    assert combine_swapped("tie", "tie") == "tie"
    assert combine_swapped("A", "tie") == "tie"
    assert combine_swapped(None, "A") is None
    assert combine_swapped("A", None) is None


def _answers(prompt: str) -> tuple[str, str]:
    a = prompt.split("Answer A: ", 1)[1].split("\n", 1)[0]
    b = prompt.split("Answer B: ", 1)[1].split("\n", 1)[0]
    return a, b


def test_pairwise_position_swap_with_scripted_judges():
    items = [("q1", "good answer", "bad answer"), ("q2", "bad answer", "good answer"), ("q3", "good", "good")]

    def fair(prompts):  # prefers the answer containing "good answer", whatever its position
        out = []
        for p in prompts:
            a, b = _answers(p)
            out.append("[[A]]" if "good answer" in a and "good answer" not in b else
                       "[[B]]" if "good answer" in b and "good answer" not in a else "[[C]]")
        return out

    res = Judge(fair).compare(items)
    assert [r.verdict for r in res] == ["A", "B", "tie"]
    assert [r.score for r in res] == [1.0, 0.0, 0.5]
    assert all(r.consistent for r in res)

    calls = []

    def biased(prompts):  # always prefers whatever is shown first
        calls.append(len(prompts))
        return ["Verdict: [[A]]"] * len(prompts)

    res = Judge(biased).compare(items)
    assert calls == [6]  # both orders of every pair, in one call
    assert [r.verdict for r in res] == ["tie"] * 3
    assert not any(r.consistent for r in res)

    def garbled(prompts):  # second order unparseable for item 0, non-string output for item 1
        out = fair(prompts)
        out[3] = "I refuse"
        out[1] = None
        return out

    res = Judge(garbled).compare(items)
    assert [r.verdict for r in res] == [None, None, "tie"]
    assert res[0].score is None


def test_grade_counts_failures_not_crash():
    outs = ["Rating: [[5]]", "no idea", "Rating: [[1]]", "Rating: [[7]]"]
    j = Judge(lambda prompts: outs[: len(prompts)])
    assert j.grade([("q", "a", "r")] * 4) == [5.0, None, 1.0, None]
    bad = Judge(lambda prompts: ["x"])  # wrong number of outputs: a clear error
    with pytest.raises(ValueError, match="expected 2 outputs"):
        bad.grade([("q", "a", "r")] * 2)
    with pytest.raises(TypeError):
        Judge("not callable")


def test_prefill_is_passed_only_to_judges_that_take_it():
    seen = []

    def complete(prompts, prefill=""):
        seen.append(prefill)
        return [prefill + " [[A]]"] * len(prompts)

    complete.prefill = True
    assert Judge(complete).compare([("q", "x", "y")])[0] == PairResult("tie", "A", "A")
    assert seen == ["Verdict: [["]
