"""evaluate() with a fake backend that returns canned completions."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from evals.backends.base import Completion, SamplingParams
from evals.evaluate import evaluate, summary_path
from evals.tasks import Example, get_task


class CannedBackend:
    """Answers each question from a dict; records what it was asked."""

    name = "canned"

    def __init__(self, answers: dict[str, str], *, report_progress: bool = True) -> None:
        self.answers = answers
        self.report_progress = report_progress
        self.calls: list[tuple[list, SamplingParams]] = []

    def generate(
        self,
        prompts: Sequence[str | list[dict[str, str]]],
        params: SamplingParams,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        self.calls.append((list(prompts), params))
        out = []
        for prompt in prompts:
            question = prompt[-1]["content"] if isinstance(prompt, list) else prompt.rsplit("Question: ", 1)[1]
            question = question.removesuffix("\nAnswer:")
            text = self.answers[question]
            out.append(Completion(text=text, num_tokens=len(text.split()), finish_reason="stop"))
            if progress and self.report_progress:
                progress(1)
        return out


def _examples() -> list[Example]:
    golds = {"q1": "1", "q2": "2", "q3": "3", "q4": "4"}
    return [Example(id=f"t/{q}", question=q, gold=g, meta={"split": "dev"}) for q, g in golds.items()]


ANSWERS = {"q1": "The answer is 1.", "q2": "The answer is 2.", "q3": "The answer is 30.", "q4": "I give up"}


def test_accuracy_stderr_records_and_files(tmp_path: Path) -> None:
    task = get_task("gsm8k")
    backend = CannedBackend(ANSWERS)
    out = tmp_path / "run" / "dev.jsonl"
    report = evaluate(backend, task, _examples(), batch_size=3, progress=False, out_path=out)

    assert (report.n, report.correct, report.accuracy) == (4, 2, 0.5)
    assert report.stderr == pytest.approx(math.sqrt(0.5 * 0.5 / 4))
    assert report.generated_tokens == sum(len(a.split()) for a in ANSWERS.values())
    assert report.split_info.split == "dev" and report.split_info.n == 4 and report.backend == "canned"
    assert [r["extracted"] for r in report.records] == ["1", "2", "30", None]
    assert [r["correct"] for r in report.records] == [True, True, False, False]
    assert report.records[0] == {
        "id": "t/q1",
        "prompt": "q1",
        "output": "The answer is 1.",
        "extracted": "1",
        "gold": "1",
        "correct": True,
        "num_tokens": 4,
        "finish_reason": "stop",
    }

    # Batching, greedy decoding with the task's limits, and chat prompts by default.
    assert [len(prompts) for prompts, _ in backend.calls] == [3, 1]
    params = backend.calls[0][1]
    assert params.temperature == 0.0 and params.stop == task.stop and params.max_new_tokens == task.max_new_tokens
    assert isinstance(backend.calls[0][0][0], list)

    lines = out.read_text().splitlines()
    assert [json.loads(line) for line in lines] == report.records
    summary = json.loads(summary_path(out).read_text())
    assert summary["accuracy"] == 0.5 and "records" not in summary
    assert summary["split_info"]["ids_sha256"] == report.split_info.ids_sha256
    assert summary_path(out).name == "dev.summary.json"


def test_text_prompts_and_silent_backends(capsys) -> None:
    backend = CannedBackend(ANSWERS, report_progress=False)
    report = evaluate(backend, get_task("gsm8k"), _examples(), prompt_format="text", progress=True)
    assert report.correct == 2
    # stderr is no terminal here: the progress is a log line, at 100% though the backend reported nothing.
    assert re.search(r"^\[\d\d:\d\d:\d\d\] gsm8k \(canned\): 4/4 \(100%\)", capsys.readouterr().err, re.M)
    assert isinstance(backend.calls[0][0][0], str) and len(backend.calls) == 1
    assert report.to_dict()["records"] == report.records
    assert "records" not in report.to_dict(records=False)


def test_math_scoring_through_evaluate() -> None:
    examples = [Example(id="m/1", question="half?", gold="\\frac{1}{2}", meta={"split": "dev"})]
    report = evaluate(CannedBackend({"half?": "It is $\\boxed{0.5}$."}), get_task("math"), examples, progress=False)
    assert report.accuracy == 1.0 and report.stderr == 0.0


def test_empty_examples_and_bad_backends_are_errors() -> None:
    with pytest.raises(ValueError):
        evaluate(CannedBackend({}), get_task("gsm8k"), [], progress=False)

    class Short(CannedBackend):
        def generate(self, prompts, params, *, progress=None):  # type: ignore[no-untyped-def]
            return []

    with pytest.raises(RuntimeError, match="0 completions for 4"):
        evaluate(Short(ANSWERS), get_task("gsm8k"), _examples(), progress=False)
