"""What `selfdev baselines` tunes: seed, experts, filter, task, dev slice, and a grid per method.

Validated once when loaded, so the runner never re-checks a method name, a
parameter name or a filter.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal, Union

from mergekit import merge_methods
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evals.backends.dtype import DtypeName
from seeds.embedded import DEFAULT_SEED
from seeds.configfile import FilterSpec, TaskName, load_yaml_model
from selfdev.experts_source import ExpertsSource

GridValue = Union[bool, int, float, str]


class ConfigError(ValueError):
    """A baselines config that cannot be read or does not validate; the message is one line."""


class BackendOptions(BaseModel):
    """The evaluation backend (evals.backends.registry): transformers on CPU, vllm on a GPU."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["transformers", "vllm"] = "transformers"
    batch_size: int = Field(32, ge=1)
    # float32 for merged models: bf16 rounding erases most of a task vector (0.2-0.4% of the weights' norm).
    # auto: bfloat16 where this machine runs it fast (evals.backends.dtype), for models that are not merges;
    # precise: merged weights as two bf16 terms where bf16 is fast (evals.backends.split_precision), else float32.
    dtype: DtypeName = "float32"
    threads: int | None = Field(None, ge=1)


class BaselinesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: str = DEFAULT_SEED
    experts: ExpertsSource
    filter: FilterSpec = "mlp"
    task: TaskName = "gsm8k"
    dev_limit: int | None = Field(20, ge=1)  # None: the whole dev split
    test_limit: int | None = Field(None, ge=1)  # score each method's tuned point on this many test problems
    data_dir: str | None = None  # None: $SELFDEV_DATA_DIR or the hub, as in evals
    output: Path = Path("runs/baselines")
    random_seed: int = 0  # for DARE's random masks
    include_seed: bool = True  # evaluate the unmerged seed as a reference row
    backend: BackendOptions = BackendOptions()
    # method -> parameter -> values; the grid is their cartesian product (an empty mapping is one point).
    methods: dict[str, dict[str, list[GridValue]]]

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: dict[str, dict[str, list[GridValue]]]) -> dict[str, dict[str, list[GridValue]]]:
        if not methods:
            raise ValueError("declare at least one method")
        for name, grid in methods.items():
            try:
                spec = merge_methods.get(name).spec
            except RuntimeError:
                known = ", ".join(sorted(m.spec.name for m in merge_methods.registered_methods()))
                raise ValueError(f"unknown mergekit method {name!r}; known: {known}") from None
            allowed = {p.name for p in spec.parameters}
            for param, values in grid.items():
                if param not in allowed:
                    raise ValueError(f"{name} has no parameter {param!r}; it takes {', '.join(sorted(allowed))}")
                if not values:
                    raise ValueError(f"{name}.{param}: give at least one value")
        return methods

    def grid(self, method: str) -> list[dict[str, Any]]:
        """Every parameter combination of `method`, in declaration order."""
        params = self.methods[method]
        return [dict(zip(params, combo)) for combo in itertools.product(*params.values())]

    @classmethod
    def load(cls, path: str | Path) -> "BaselinesConfig":
        return load_yaml_model(cls, path, ConfigError)
