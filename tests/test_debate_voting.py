"""Answers and the majority vote: equivalence by task, ties, missing answers."""

from __future__ import annotations

import pytest

from evals.backends.base import Completion
from evals.backends.config import BackendConfig
from evals.tasks import get_task
from evals.tasks.base import Example
from seeds.debate.datasets import DatasetSettings, build_datasets
from seeds.debate.engine import AgentModels, DebateSettings, run_debate, start_records
from seeds.debate.models import ModelPool
from seeds.debate.voting import agents_disagree, majority_vote

GSM8K = get_task("gsm8k")
MATH = get_task("math")
GSM8K_EXAMPLE = Example(id="gsm8k/train/0", question="How many wheels are left?", gold="504")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- 3 dozen is 36\n- 36 * 0.5 = 18\n\\boxed{18}", "18"),
        ("The total is \\boxed{\\$1,000} for 2 people.", "1000"),  # the box wins over a later number
        ("no box, the answer is 42.", "42"),
        ("nothing numeric here", None),
    ],
)
def test_agents_answers_are_read_by_the_tasks_extractor(text, expected):
    assert GSM8K.extract(text) == expected


def test_debate_reads_a_cut_off_response_only_by_its_box():
    cut = "- 73 motorcycles need 146 wheels\n- the box has 650 wheels\n- subtract the total number of wheels"
    boxed = cut + " 650 - 146 = \\boxed{504}"
    calls: list = []

    class Backend:
        name = "cut"

        def generate(self, prompts, params, *, progress=None):
            calls.append(len(prompts))
            return [Completion(text=t, num_tokens=8, finish_reason="length") for t in (cut, boxed, cut + " 504")]

    pool = ModelPool(BackendConfig(), lambda model: Backend())
    records = start_records([(GSM8K, GSM8K_EXAMPLE)])
    run_debate(pool, AgentModels.copies("seed", 3), records, DebateSettings(rounds=1), seed=0, show_progress=False)
    assert records[0].answers == [[None, "504", None]]
    assert records[0].votes == [None]  # one answer of three agents is no majority
    assert MATH.extract("so $x = \\boxed{\\frac{1}{2}}$", truncated=True) == "\\frac{1}{2}"


def test_vote_by_numeric_equivalence():
    assert majority_vote(GSM8K, ["18.00", "7", "18"]) in ("18.00", "18")
    assert majority_vote(GSM8K, ["1,000", "1000", "999"]) is not None
    assert GSM8K.is_correct(majority_vote(GSM8K, ["1,000", "1000", "999"]), "1000")


def test_vote_by_math_verify():
    assert MATH.is_correct(majority_vote(MATH, ["0.5", "\\frac{1}{2}", "3"]), "\\frac{1}{2}")


@pytest.mark.parametrize(
    ("answers", "majority", "plurality"),
    [
        (["12", "15", "18"], None, "12"),  # a three-way split has no majority; plurality ties to agent 0
        ([None, None, "7"], None, "7"),  # agents without an answer still count among the agents
        (["7", "7", "3"], "7", "7"),
        (["7.0", "3", "7"], "7.0", "7.0"),  # equal up to the task's equivalence
        ([None, "4", "5", "5"], None, "5"),  # two of four is not more than half
        (["5", "4", "5", "5"], "5", "5"),
        ([None, None], None, None),
    ],
)
def test_vote_rules(answers, majority, plurality):
    assert majority_vote(GSM8K, answers) == majority  # the default rule
    assert majority_vote(GSM8K, answers, "majority") == majority
    assert majority_vote(GSM8K, answers, "plurality") == plurality


def test_vote_rule_is_a_debate_setting_and_drops_unlabelled_problems():
    assert DebateSettings().vote == "majority"
    with pytest.raises(ValueError):
        DebateSettings(vote="unanimous")
    split = ["\\boxed{12}", "\\boxed{15}", "\\boxed{18}"]

    class Backend:
        name = "split"

        def generate(self, prompts, params, *, progress=None):
            return [Completion(text=split[i % 3], num_tokens=4, finish_reason="stop") for i in range(len(prompts))]

    pool = ModelPool(BackendConfig(), lambda model: Backend())
    for rule, label in (("majority", None), ("plurality", "12")):
        records = start_records([(GSM8K, GSM8K_EXAMPLE)])
        settings = DebateSettings(rounds=1, vote=rule)
        run_debate(pool, AgentModels.copies("seed", 3), records, settings, seed=0, show_progress=False)
        assert records[0].label == label
        datasets = build_datasets(records, 3, DatasetSettings(), seed=0)
        assert sum(map(len, datasets.examples["generator"])) == (0 if label is None else 1)


def test_disagreement():
    assert not agents_disagree(GSM8K, ["18", "18.0", "18"])
    assert agents_disagree(GSM8K, ["18", "17", "18"])
    assert agents_disagree(GSM8K, ["18", None, "18"])
    assert not agents_disagree(GSM8K, [None, None])
