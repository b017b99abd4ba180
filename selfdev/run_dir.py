"""The layout of one `selfdev discover` run folder (DESIGN.md, "Run directory")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path
    shared: Path | None = None  # baselines, reusable across runs

    @property
    def reusable(self) -> Path:
        return self.shared or self.root

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def plan(self) -> Path:
        """The budget plan (selfdev.budget), kept so a resumed run keeps its sizes."""
        return self.root / "plan.json"

    @property
    def archive(self) -> Path:
        return self.root / "archive.sqlite"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def baselines(self) -> Path:
        return self.reusable / "baselines"

    def iteration(self, i: int) -> Path:
        return self.root / "generator" / f"iter-{i}"

    def samples(self, i: int) -> Path:
        return self.iteration(i) / "samples.jsonl"

    def repairs(self, i: int, round_: int) -> Path:
        return self.iteration(i) / f"repairs-{round_}.jsonl"

    def adapter(self, i: int) -> Path:
        return self.iteration(i) / "adapter"

    def latest_adapter(self, before: int) -> Path | None:
        """The newest trained adapter of an iteration before `before` (None: the base generator)."""
        for i in range(before - 1, -1, -1):
            if (self.adapter(i) / "adapter_config.json").is_file():
                return self.adapter(i)
        return None
