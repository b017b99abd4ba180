"""`DiscoveryConfig`: everything `selfdev discover` needs, validated once when the YAML is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox import SandboxLimits
from seeds.embedded import DEFAULT_SEED
from selfdev.budget import BudgetConfig
from selfdev.candidates import CascadeConfig
from evals.backends.dtype import DtypeName
from seeds.configfile import FilterSpec, TaskName, load_yaml_model
from selfdev.dpo import DPOSettings
from selfdev.errors import UserError
from selfdev.experts_source import ExpertsSource
from selfdev.merging.baselines_config import BackendOptions, GridValue
from selfdev.preferences import PreferenceConfig


class ConfigError(UserError):
    """A discovery config that cannot be read or does not validate."""


class GeneratorConfig(BaseModel):
    """The model that writes merge functions, and how it samples (paper: T 1.2, minus ~0.2 per iteration)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None  # None: a copy of the seed
    samples_per_iteration: int = Field(12, ge=1)
    max_new_tokens: int = Field(384, ge=16)
    temperature: float = Field(1.2, gt=0)
    temperature_decay: float = Field(0.2, ge=0)
    min_temperature: float = Field(0.5, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    batch_size: int = Field(12, ge=1)
    # paper: the fixed one-shot prompt; evolve: the prompt shows `parents` of the run's best, distinct algorithms
    # The generator carries its DPO adapter merged into its weights; a small update that bf16 rounding would erase,
    # so "precise": bfloat16x2 where bf16 is fast (evals.backends.split_precision), float32 elsewhere.
    dtype: DtypeName = "precise"
    mode: Literal["paper", "evolve"] = "paper"
    parents: int = Field(3, ge=1, description="evolve: scored, distinct, non-trivial parents shown in the prompt")
    repair_attempts: int = Field(
        0, ge=0, description="rounds in which a failed candidate is shown with the sandbox's diagnosis and rewritten"
    )
    control: bool = Field(
        False, description="control arm: every iteration after DPO also samples as many replies from the generator "
        "without DPO, at the same temperature and prompt, so the effect of DPO is separable from the temperature's",
    )

    def temperature_at(self, iteration: int) -> float:
        return max(self.min_temperature, self.temperature - self.temperature_decay * iteration)


class SelectionConfig(BaseModel):
    """The final pick, made on fresh problems so the search's luck does not carry into it (no winner's curse).

    The top `finalists` of the search (one ranking: `selfdev.scores.rank_key`) are
    re-scored on `problems` dev problems that follow the cascade's last slice and
    that the search never used; the best there is the selected algorithm, the
    only one evaluated on test.
    """

    model_config = ConfigDict(extra="forbid")

    finalists: int = Field(3, ge=1, description="top search candidates re-scored on the selection slice")
    problems: int = Field(50, ge=1, description="selection-dev problems, disjoint from the search's")


class TestEvalConfig(BaseModel):
    """The test split, touched once after the pick: the selected algorithm, the references, the tuned baselines."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, description="test problems (None: the whole test split)")


class DistributedConfig(BaseModel):
    """Candidate evaluation on Ray actors (`pip install '.[dist]'`); off: this process evaluates, one at a time.

    Each actor holds the seed, the task vectors and an evaluation model, and
    merges and scores the candidates the driver hands it; the driver keeps the
    generator and the archive. The nodes of a cluster need this package
    installed and the seed and expert paths readable.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    actors: int = Field(1, ge=1)  # one per GPU, or per tensor-parallel group
    address: str | None = None  # a running Ray cluster ("auto", "ray://head:10001"); None: start one on this machine
    num_cpus_per_actor: float = Field(1, ge=0)
    num_gpus_per_actor: float = Field(0, ge=0)  # 1 on GPU machines; the group's size for tensor parallelism
    # Ray restarts a crashed actor this many times (-1: always); a job it was running is retried elsewhere either way.
    max_restarts: int = Field(1, ge=-1)


class DiscoveryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: str = DEFAULT_SEED
    experts: ExpertsSource
    filter: FilterSpec = "mlp"
    task: TaskName = "gsm8k"
    data_dir: str | None = None  # None: --data-dir, $SELFDEV_DATA_DIR, or the hub
    # Experts and baselines are kept here to be reused by later runs (default: inside the run folder).
    shared_dir: Path | None = None
    iterations: int = Field(3, ge=1)
    random_seed: int = 0
    generator: GeneratorConfig = GeneratorConfig()
    cascade: CascadeConfig = CascadeConfig()
    preferences: PreferenceConfig = PreferenceConfig()
    dpo: DPOSettings = DPOSettings()
    selection: SelectionConfig = SelectionConfig()
    test: TestEvalConfig = TestEvalConfig()
    backend: BackendOptions = BackendOptions()
    sandbox: dict[str, Any] = {}  # SandboxLimits fields
    distributed: DistributedConfig = DistributedConfig()
    budget: BudgetConfig = Field(
        BudgetConfig(minutes=None), description="a wall-clock budget the run is sized to (none by default)"
    )
    # mergekit baselines tuned on the first cascade slice; method -> parameter -> values. Empty: none.
    baselines: dict[str, dict[str, list[GridValue]]] = {}

    @field_validator("sandbox")
    @classmethod
    def _valid_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            SandboxLimits(**value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"sandbox limits: {e}") from None
        return value

    def sandbox_limits(self) -> SandboxLimits:
        return SandboxLimits(**self.sandbox)

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "DiscoveryConfig":
        return load_yaml_model(cls, path, ConfigError, overrides)

    def dump(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
