"""`DebateConfig`: everything `selfdev experts` needs, validated once when the YAML is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evals.backends.config import backend_config
from seeds.configfile import TaskName, load_yaml_model
from seeds.debate.datasets import ROLES, DatasetSettings
from seeds.debate.engine import DebateSettings
from seeds.debate.finetune import FinetuneSettings
from seeds.debate.metrics import EvalSettings
from seeds.embedded import DEFAULT_SEED
from seeds.errors import SeedError


class DebateConfigError(SeedError):
    """A debate config that cannot be read or does not validate; the message is one line."""


class TrainingProblems(BaseModel):
    """One source of training problems: `limit` problems of a task's split from `offset`, in its seeded order."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName
    split: str = "train"
    offset: int = Field(0, ge=0)
    limit: int = Field(ge=1)

    @field_validator("split")
    @classmethod
    def _not_dev(cls, value: str) -> str:
        if value == "dev":
            raise ValueError("training on the dev split would leak into discovery's selection; use 'train'")
        return value


class DebateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: str = DEFAULT_SEED  # embedded seed name, HF folder or hub id
    train: list[TrainingProblems] = Field(min_length=1)
    data_dir: str | None = None  # None: --data-dir, $SELFDEV_DATA_DIR, or the hub
    iterations: int = Field(1, ge=1)  # iteration l+1 debates with the agents finetuned in iteration l
    random_seed: int = 0
    # Which finetuned agents the merge stage gets: the generators (default), the critics, or both.
    handoff: Literal["generators", "critics", "all"] = "generators"
    # Critic agents are finetuned as published; false skips them where nothing uses them (handoff, a later
    # iteration's debate, the system evaluation), which on a CPU saves most of the training time.
    critics: bool = True
    debate: DebateSettings = DebateSettings()
    datasets: DatasetSettings = DatasetSettings()
    finetune: FinetuneSettings = FinetuneSettings()
    evaluation: EvalSettings = EvalSettings()
    # The debate generates: vLLM where it runs, bf16 where this machine runs it fast (evals.backends.dtype).
    backend: backend_config(name="auto", batch_size=64, dtype="auto") = Field(
        description="the backend of the debate and its evaluation"
    )

    @model_validator(mode="after")
    def _held_out_is_held_out(self) -> "DebateConfig":
        ev = self.evaluation
        for source in self.train:
            same = source.task == ev.task and source.split == ev.split
            if same and source.offset < ev.offset + ev.limit and ev.offset < source.offset + source.limit:
                raise ValueError(
                    f"evaluation slice {ev.task} {ev.split}[{ev.offset}:{ev.offset + ev.limit}] overlaps the "
                    f"training slice [{source.offset}:{source.offset + source.limit}]; move its offset"
                )
        return self

    @model_validator(mode="after")
    def _skipped_critics_are_unused(self) -> "DebateConfig":
        if not self.critics:
            users = [
                ("handoff", self.handoff != "generators"),
                ("iterations > 1", self.iterations > 1),
                ("evaluation.system", self.evaluation.system),
            ]
            needed = [name for name, uses in users if uses]
            if needed:
                raise ValueError(f"critics: false, but {', '.join(needed)} needs finetuned critics")
        return self

    def trained_roles(self) -> tuple[str, ...]:
        return ROLES if self.critics else tuple(r for r in ROLES if r != "critic")

    def training_fields(self) -> dict[str, Any]:
        """Everything that decides the experts; a finished run folder is reusable only if these match.

        Whether critics are trained is not among them: it adds a stage and changes no generator."""
        return self.model_dump(mode="json", exclude={"evaluation", "backend", "data_dir", "critics"})


def load_debate_config(path: str | Path, overrides: dict[str, Any] | None = None) -> DebateConfig:
    """Read and validate a YAML config; any problem is a DebateConfigError naming the file and field."""
    return load_yaml_model(DebateConfig, path, DebateConfigError, overrides)
