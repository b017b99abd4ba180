"""Scoring a model on a task: generate with a backend, extract, judge, aggregate, record."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals.atomic import write_text_atomic
from evals.backends.base import Completion, GenerationBackend, SamplingParams
from evals.progress import progress_bar
from evals.prompts import PromptFormat, build_prompt
from evals.splits import SplitInfo
from evals.tasks.base import Example, Task


@dataclass
class EvalReport:
    task: str
    backend: str
    split_info: SplitInfo
    n: int
    correct: int
    accuracy: float
    stderr: float  # binomial standard error, sqrt(p(1-p)/n)
    seconds: float  # generation wall time
    scoring_seconds: float  # extraction and judging (math-verify can be slow)
    generated_tokens: int
    tokens_per_second: float
    truncated: int  # completions that hit max_new_tokens
    records: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self, *, records: bool = True) -> dict:
        """JSON-ready; `records=False` gives the summary alone."""
        data = asdict(self)
        if not records:
            data.pop("records")
        return data


def evaluate(
    backend: GenerationBackend,
    task: Task,
    examples: Sequence[Example],
    *,
    batch_size: int | None = None,
    progress: bool = True,
    out_path: str | os.PathLike[str] | None = None,
    prompt_format: PromptFormat = "chat",
    params: SamplingParams | None = None,
) -> EvalReport:
    """Greedy few-shot accuracy of `backend`'s model on `examples`.

    `batch_size` hands the backend that many prompts per call (None: all at once,
    leaving batching to the backend). `params` replaces the default greedy
    decoding with the task's stop sequences and token limit. With `out_path`, the
    per-example records are written there as JSONL and the summary beside it
    (`<stem>.summary.json`).
    """
    if not examples:
        raise ValueError(f"no examples to evaluate for task {task.name!r}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = params or SamplingParams(max_new_tokens=task.max_new_tokens, temperature=0.0, stop=task.stop)
    prompts = [build_prompt(task, ex.question, prompt_format) for ex in examples]

    start = time.perf_counter()
    completions = _generate(backend, prompts, params, batch_size or len(prompts), task.name, progress)
    seconds = time.perf_counter() - start

    start = time.perf_counter()
    records = []
    for ex, completion in zip(examples, completions):
        extracted, correct = task.score(completion.text, ex.gold, truncated=completion.truncated)
        records.append(
            {
                "id": ex.id,
                "prompt": ex.question,
                "output": completion.text,
                "extracted": extracted,
                "gold": ex.gold,
                "correct": correct,
                "num_tokens": completion.num_tokens,
                "finish_reason": completion.finish_reason,
            }
        )
    scoring_seconds = time.perf_counter() - start

    n = len(records)
    correct = sum(r["correct"] for r in records)
    accuracy = correct / n
    tokens = sum(c.num_tokens for c in completions)
    report = EvalReport(
        task=task.name,
        backend=getattr(backend, "name", type(backend).__name__),
        split_info=task.split_info(examples),
        n=n,
        correct=correct,
        accuracy=accuracy,
        stderr=math.sqrt(accuracy * (1 - accuracy) / n),
        seconds=seconds,
        scoring_seconds=scoring_seconds,
        generated_tokens=tokens,
        tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
        truncated=sum(c.truncated for c in completions),
        records=records,
    )
    if out_path is not None:
        write_report(report, Path(out_path))
    return report


def summary_path(out_path: Path) -> Path:
    """Where the summary of a records file goes: dev.jsonl -> dev.summary.json."""
    return out_path.with_suffix(".summary.json")


def write_report(report: EvalReport, out_path: Path) -> None:
    """Records as JSONL at `out_path`, summary JSON beside it; each file replaced atomically."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in report.records)
    write_text_atomic(out_path, lines)
    write_text_atomic(summary_path(out_path), json.dumps(report.to_dict(records=False), indent=2) + "\n")


def _generate(
    backend: GenerationBackend,
    prompts: list,
    params: SamplingParams,
    batch_size: int,
    label: str,
    show: bool,
) -> list[Completion]:
    # A bar on stderr (a CLI's stdout stays for results), or lines with rate and ETA where output is a log.
    with progress_bar(f"{label} ({getattr(backend, 'name', 'backend')})", len(prompts), show) as advance:
        completions: list[Completion] = []
        for lo in range(0, len(prompts), batch_size):
            batch = prompts[lo : lo + batch_size]
            reported = 0

            def counted(k: int) -> None:
                nonlocal reported
                reported += k
                advance(k)

            out = backend.generate(batch, params, progress=counted)
            if len(out) != len(batch):
                raise RuntimeError(f"backend returned {len(out)} completions for {len(batch)} prompts")
            # A backend that reports progress coarsely (or not at all) still ends the batch at 100%.
            if reported < len(batch):
                advance(len(batch) - reported)
            completions.extend(out)
    return completions
