"""The layout of one `selfdev discover` run folder (DESIGN.md, "Run directory"): every path a run writes.

The archive (`archive.sqlite`) holds every candidate and indexes the rest of
what the run produced, by kind and path (`Archive.index`, `Archive.artifacts`):

    expert     an expert model the run merges (absolute: usually in the shared folder; or a hub id)
    baselines  the tuned mergekit baselines' folder (baselines.json, baselines.md, results.jsonl)
    samples    an iteration's sampled replies (generator/iter-N/samples.jsonl) or a repair round's (repairs-R.jsonl)
    adapter    an iteration's DPO adapter (generator/iter-N/adapter, with dpo_metrics.json); detail: the DPO metrics
    config     the resolved config.yaml
    plan       the budget plan (plan.json)

Files are written whole or not at all (evals.atomic).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path
    shared: Path | None = None  # baselines, reusable across runs

    def relative(self, path: str | Path) -> str:
        """How the archive indexes `path`: relative to the run folder when inside it, else absolute (a name that is
        no local path, such as a hub id, as it is)."""
        if not Path(path).exists():
            return str(path)
        path = Path(path).absolute()
        try:
            return str(path.relative_to(self.root.absolute()))
        except ValueError:
            return str(path)

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

    @property
    def baselines_summary(self) -> Path:
        """The tuned baselines (selfdev.merging.baselines_report writes it)."""
        return self.baselines / "baselines.json"

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
