"""One evaluated baseline grid point, and the append-only log that makes reruns resume.

The log keeps every problem's outcome. A point is reused problem by problem: a run that asks for more problems
than an earlier one (a second `make run` whose plan grew the search-dev slice) evaluates only the new ones, and
one that asks for fewer evaluates nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord, CandidateStatus

SEED_ROW = "seed"  # the method name of the unmerged reference row


@dataclass
class BaselineResult:
    key: str
    context: str  # hash of what the score depends on besides method and params
    method: str
    params: dict[str, Any]
    split: str
    accuracy: float
    correct: int
    n: int
    eval_seconds: float
    merge_seconds: float
    outcomes: str | None = None  # Evaluation JSON: which problems were right (None in results from before it was kept)

    @property
    def evaluation(self) -> Evaluation | None:
        return Evaluation.from_json(self.outcomes)


class ResultLog:
    """Append-only JSONL of finished evaluations; lines from other contexts are kept but ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, context: str) -> dict[str, list[BaselineResult]]:
        """Every row of `context`, per point key, in the order they were written."""
        if not self.path.is_file():
            return {}
        found: dict[str, list[BaselineResult]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = BaselineResult(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a crash
            if row.context == context and row.outcomes is not None:
                found.setdefault(row.key, []).append(row)
        return found

    def append(self, row: BaselineResult) -> None:
        # A line cut short by a crash would swallow the next row; it starts a line of its own instead.
        with self.path.open("a+b") as f:
            cut = f.tell() > 0 and (f.seek(-1, 2), f.read(1))[1] != b"\n"
            f.write((("\n" if cut else "") + json.dumps(asdict(row)) + "\n").encode("utf-8"))


def known_outcomes(rows: Sequence[BaselineResult]) -> dict[str, int]:
    """Problem id -> the index of the last row of one point that evaluated it."""
    return {pid: i for i, row in enumerate(rows) for pid in row.evaluation.ids}


def over(rows: Sequence[BaselineResult], ids: Sequence[str]) -> BaselineResult:
    """One point's result on exactly the problems `ids`, all of which `rows` evaluated (a later row wins a problem
    evaluated twice). Its seconds are each row's seconds in proportion to the problems taken from it."""
    latest = {pid: (i, ok) for i, row in enumerate(rows) for pid, ok in zip(row.evaluation.ids, row.evaluation.correct)}
    evaluation = Evaluation.of(ids, (latest[pid][1] for pid in ids))
    taken = [sum(latest[pid][0] == i for pid in ids) for i in range(len(rows))]
    return replace(
        rows[-1],
        accuracy=evaluation.accuracy,
        correct=evaluation.k,
        n=evaluation.n,
        eval_seconds=sum(row.eval_seconds * k / row.n for row, k in zip(rows, taken)),
        merge_seconds=max(row.merge_seconds for row, k in zip(rows, taken) if k),
        outcomes=evaluation.to_json(),
    )


@dataclass(frozen=True)
class GridWork:
    """The problems a baselines run still has to evaluate, the rest being in its log: what the budget plans for."""

    dev: list[tuple[str, int]]  # (method, problems to evaluate) per grid point
    test: dict[str, int]  # method -> problems to evaluate for its tuned point

    @classmethod
    def everything(cls, methods: dict, dev: int, test: int) -> "GridWork":
        """Nothing in the log: every point of `methods` (method -> parameter -> values) on `dev` problems, and each
        method's tuned point on `test`."""
        points = [(m, math.prod(len(v) for v in grid.values()) if grid else 1) for m, grid in methods.items()]
        return cls(dev=[(m, dev) for m, count in points for _ in range(count)], test={m: test for m in methods})


def best_per_method(rows: list[BaselineResult]) -> dict[str, BaselineResult]:
    """Highest accuracy per method; the earlier grid point wins a tie."""
    best: dict[str, BaselineResult] = {}
    for row in rows:
        if row.method not in best or row.accuracy > best[row.method].accuracy:
            best[row.method] = row
    return best


def format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def read_tuned_baselines(folder: Path) -> list[CandidateRecord]:
    """The tuned point of each method in `folder`/baselines.json as archive rows (kind 'baseline', iteration -2).

    The unmerged seed row is left out: the run's `seed` reference is the same model.
    """
    path = folder / "baselines.json"
    if not path.is_file():
        return []
    tuned = json.loads(path.read_text(encoding="utf-8")).get("tuned", [])
    return [
        CandidateRecord(
            iteration=-2,
            sample_index=index,
            status=CandidateStatus.OK,
            kind="baseline",
            name=row["method"],
            params=row["params"],
            dev=Evaluation.from_json(row.get("dev_outcomes")),
            test=Evaluation.from_json(row.get("test_outcomes")),
        )
        for index, row in enumerate(tuned)
        if row["method"] != SEED_ROW
    ]
