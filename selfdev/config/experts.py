"""What a run merges: the seed, its experts (named models, a `selfdev experts` config, or perturbations), the
tensors, and the task the merges are scored on.

The schemas only; `selfdev.experts_source.resolve_experts` turns it into expert folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from seeds.configfile import FilterSpec, TaskName
from seeds.embedded import DEFAULT_SEED
from selfdev.config.loading import write_config


class SyntheticExperts(BaseModel):
    """Perturbed copies of the seed, for pipeline checks without finetuned experts (see seeds.synthetic)."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(3, ge=1, description="perturbed copies of the seed")
    scale: float = Field(0.02, gt=0, description="size of each perturbation, relative to the seed's weights")
    shard_mb: int = Field(512, ge=1, description="safetensors shard size of each copy, in MB")


class ExpertsSource(BaseModel):
    """Exactly one of: named models (a plain list is short for `models`), a `selfdev experts` YAML, or
    synthetic perturbations."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field([], description="expert models with the seed's architecture: HF folders or hub ids")
    debate: Path | None = Field(
        None, description="a `selfdev experts` config (configs/experts-embedded.yaml); its experts are built in, "
        "or reused from, the cache",
    )
    debate_overrides: dict[str, Any] = Field(
        {}, description="settings laid over the debate file, e.g. a smaller held-out evaluation: {evaluation: {limit: 8}}"
    )
    synthetic: SyntheticExperts | None = Field(None, description="seeded perturbations of the seed")

    @model_validator(mode="before")
    @classmethod
    def _list_means_models(cls, data):
        return {"models": data} if isinstance(data, list) else data

    @model_validator(mode="after")
    def _exactly_one(self) -> "ExpertsSource":
        given = [bool(self.models), self.debate is not None, self.synthetic is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of `models`, `debate`, `synthetic`")
        return self

    def describe(self) -> list[str] | str:
        if self.models:
            return self.models
        if self.debate is not None:
            return f"debate-finetuned ({self.debate})"
        return f"{self.synthetic.count} synthetic (scale {self.synthetic.scale})"

    def absolute(self) -> "ExpertsSource":
        """With the debate config's path made absolute, for a config recorded in a run folder."""
        return self.model_copy(update={"debate": self.debate.resolve()}) if self.debate else self


class MergeSetup(BaseModel):
    """The models and the task a discovery run and a baselines run share."""

    model_config = ConfigDict(extra="forbid")

    seed: str = Field(DEFAULT_SEED, description="embedded seed name, HF folder or hub id")
    experts: ExpertsSource = Field(description="the experts whose task vectors are merged")
    filter: FilterSpec = Field("mlp", description="tensors merged: mlp, all-linear, all or re:<pattern>")
    task: TaskName = Field("gsm8k", description="the task merges are scored on")

    def dump(self, path: Path) -> None:
        """The config as resolved (every default spelled out), atomically: a run's `config.yaml`."""
        write_config(self, path)
