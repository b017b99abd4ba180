"""What `selfdev baselines` tunes: seed, experts, filter, task, dev slice, and a grid per mergekit method.

Validated once when loaded, so the runner never re-checks a method name, a
parameter name or a filter. The method names are checked against mergekit's
registry, imported only while a grid is validated (importing this module
loads neither mergekit nor torch).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import AfterValidator, Field, field_validator

from evals.backends.config import BackendConfig
from selfdev.config.experts import MergeSetup
from selfdev.config.loading import read_config

GridValue = Union[bool, int, float, str]


def _known_methods(methods: dict[str, dict[str, list[GridValue]]]) -> dict[str, dict[str, list[GridValue]]]:
    from mergekit import merge_methods

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


# method -> parameter -> values; the grid is their cartesian product (an empty mapping is one point).
MethodGrids = Annotated[dict[str, dict[str, list[GridValue]]], AfterValidator(_known_methods)]


class BaselinesConfig(MergeSetup):
    """`selfdev baselines`: mergekit methods tuned on a dev slice, their best points scored on test."""

    dev_limit: int | None = Field(20, ge=1, description="dev problems each grid point is scored on (None: all)")
    test_limit: int | None = Field(None, ge=1, description="test problems each method's tuned point is scored on")
    data_dir: str | None = Field(None, description="local data folder; None: $SELFDEV_DATA_DIR or the hub")
    output: Path = Field(Path("runs/baselines"), description="run folder; finished points in it are reused")
    random_seed: int = Field(0, description="seed of DARE's random masks")
    include_seed: bool = Field(True, description="evaluate the unmerged seed as a reference row")
    backend: BackendConfig = Field(default_factory=BackendConfig, description="the evaluation backend")
    methods: MethodGrids = Field(description="mergekit method -> parameter -> values; each grid is a product")

    @field_validator("methods")
    @classmethod
    def _some_method(cls, methods: dict[str, dict[str, list[GridValue]]]) -> dict[str, dict[str, list[GridValue]]]:
        if not methods:
            raise ValueError("declare at least one method")
        return methods

    def grid(self, method: str) -> list[dict[str, Any]]:
        """Every parameter combination of `method`, in declaration order."""
        params = self.methods[method]
        return [dict(zip(params, combo)) for combo in itertools.product(*params.values())]

    @classmethod
    def load(cls, path: str | Path) -> "BaselinesConfig":
        return read_config(cls, path)
