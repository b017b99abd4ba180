"""The vote over the agents' answers, by each task's own answer equivalence (no ground truth involved).

GSM8K and arithmetic compare numbers, MATH goes through math-verify: whatever
`Task.is_correct` does for scoring is what decides whether two agents agree.
Answers themselves are read by `Task.extract`, the extractor evaluation uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from evals.tasks.base import Task

# "majority": an answer more than half of all agents gave, else no label (the problem is dropped).
# "plurality": the largest group of equal answers, a tie to the agent that answered first (the reference code).
VoteRule = Literal["majority", "plurality"]


def same_answer(task: Task, a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and task.is_correct(a, b)


def majority_vote(task: Task, answers: Sequence[str | None], rule: VoteRule = "majority") -> str | None:
    """The voted answer up to equivalence under `rule`; None when there is none.

    Agents without an answer do not vote for anything, but under "majority" they
    still count among the agents, so `[None, None, 7]` has no majority.
    """
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        for group in groups:
            if same_answer(task, answer, group[0]):
                group.append(answer)
                break
        else:
            groups.append([answer])
    if not groups:
        return None
    # max() keeps the first of equally large groups: the earliest answer wins a tie, as in the reference code.
    largest = max(groups, key=len)
    if rule == "majority" and 2 * len(largest) <= len(answers):
        return None
    return largest[0]


def agents_disagree(task: Task, answers: Sequence[str | None]) -> bool:
    """Whether the agents gave more than one distinct answer; "no answer" counts as one answer of its own."""
    first = answers[0]
    return any(not (a is None and first is None) and not same_answer(task, first, a) for a in answers[1:])
