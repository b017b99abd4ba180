"""Answers and the majority vote: equivalence by task, ties, missing answers."""

from __future__ import annotations

import pytest

from evals.tasks import get_task
from seeds.debate.voting import agents_disagree, extract_answer, majority_vote

GSM8K = get_task("gsm8k")
MATH = get_task("math")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- 3 dozen is 36\n- 36 * 0.5 = 18\n\\boxed{18}", "18"),
        ("The total is \\boxed{\\$1,000} for 2 people.", "1000"),  # the box wins over a later number
        ("no box, the answer is 42.", "42"),
        ("nothing numeric here", None),
    ],
)
def test_extract_numeric(text, expected):
    assert extract_answer(GSM8K, text) == expected


def test_cut_off_response_answers_only_with_a_box():
    cut = "- 73 motorcycles need 146 wheels\n- the box has 650 wheels\n- subtract the total number of wheels"
    assert extract_answer(GSM8K, cut, finished=False) is None
    assert extract_answer(GSM8K, cut + " 650 - 146 = \\boxed{504}", finished=False) == "504"


def test_extract_math_keeps_expression():
    assert extract_answer(MATH, "so $x = \\boxed{\\frac{1}{2}}$") == "\\frac{1}{2}"


def test_vote_by_numeric_equivalence():
    assert majority_vote(GSM8K, ["18.00", "7", "18"]) in ("18.00", "18")
    assert majority_vote(GSM8K, ["1,000", "1000", "999"]) is not None
    assert GSM8K.is_correct(majority_vote(GSM8K, ["1,000", "1000", "999"]), "1000")


def test_vote_by_math_verify():
    assert MATH.is_correct(majority_vote(MATH, ["0.5", "\\frac{1}{2}", "3"]), "\\frac{1}{2}")


def test_vote_tie_goes_to_first_and_missing_do_not_vote():
    assert majority_vote(GSM8K, ["3", "4", "5"]) == "3"
    assert majority_vote(GSM8K, [None, "4", "5", "5"]) == "5"
    assert majority_vote(GSM8K, [None, None, "9"]) == "9"
    assert majority_vote(GSM8K, [None, None]) is None


def test_disagreement():
    assert not agents_disagree(GSM8K, ["18", "18.0", "18"])
    assert agents_disagree(GSM8K, ["18", "17", "18"])
    assert agents_disagree(GSM8K, ["18", None, "18"])
    assert not agents_disagree(GSM8K, [None, None])
