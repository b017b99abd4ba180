"""Answers and the majority vote, by each task's own answer equivalence (no ground truth involved).

GSM8K and arithmetic compare numbers, MATH goes through math-verify: whatever
`Task.is_correct` does for scoring is what decides whether two agents agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from evals.tasks.base import Task
from evals.tasks.math_equiv import last_boxed


def extract_answer(task: Task, text: str, *, finished: bool = True) -> str | None:
    """An agent's final answer: the last \\boxed{} it wrote, read by the task's extractor; else the task's own guess,
    but only from a response that ended by itself (`finished`).

    The box is handed back to the extractor still boxed so that each task reads it
    its own way (MATH keeps the expression, the numeric tasks take its number), and
    a number written after the box ("\\boxed{18} ... in 2 steps") cannot win. A
    response cut off at the token limit without a box has no answer: its last
    number is some intermediate result, and as a vote it would only add noise.
    """
    boxed = last_boxed(text)
    if boxed:
        answer = task.extract(f"\\boxed{{{boxed}}}")
        if answer is not None:
            return answer
    return task.extract(text) if finished else None


def same_answer(task: Task, a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and task.is_correct(a, b)


def majority_vote(task: Task, answers: Sequence[str | None]) -> str | None:
    """The most common answer up to equivalence; a tie goes to the answer given first (agent order).

    Agents without an answer do not vote; None when no agent answered.
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
    # max() keeps the first of equally large groups: the earliest answer wins a tie, as in the reference code.
    return max(groups, key=len)[0] if groups else None


def agents_disagree(task: Task, answers: Sequence[str | None]) -> bool:
    """Whether the agents gave more than one distinct answer; "no answer" counts as one answer of its own."""
    first = answers[0]
    return any(not (a is None and first is None) and not same_answer(task, first, a) for a in answers[1:])
