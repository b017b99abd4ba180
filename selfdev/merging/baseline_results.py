"""One evaluated baseline grid point, and the append-only log that makes reruns resume."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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

    def load(self, context: str) -> dict[str, BaselineResult]:
        if not self.path.is_file():
            return {}
        found = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = BaselineResult(**json.loads(line))
            except (json.JSONDecodeError, TypeError):
                continue  # a line cut short by a crash
            if row.context == context and row.outcomes is not None:
                found[row.key] = row
        return found

    def append(self, row: BaselineResult) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(row)) + "\n")


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
