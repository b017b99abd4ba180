"""`DiscoveryConfig`: everything `selfdev discover` needs, validated once, completely, when the YAML is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from evals.backends.config import BackendConfig
from sandbox.limits import SandboxLimits
from selfdev.config.baselines import MethodGrids
from selfdev.config.experts import MergeSetup
from selfdev.config.loading import read_config
from selfdev.config.run import BudgetConfig, DistributedConfig, SelectionConfig, TestEvalConfig
from selfdev.config.search import CascadeConfig, DPOSettings, GeneratorConfig, PreferenceConfig


class DiscoveryConfig(MergeSetup):
    """`selfdev discover`: experts, baselines, iterations of sample-score-DPO, the pick, the test (configs/embedded.yaml)."""

    data_dir: str | None = Field(None, description="local data folder; None: --data-dir, $SELFDEV_DATA_DIR, or the hub")
    shared_dir: Path | None = Field(
        None, description="experts and baselines are kept here to be reused by later runs (None: the run folder)"
    )
    iterations: int = Field(3, ge=1, description="sample-evaluate-DPO iterations")
    random_seed: int = Field(0, description="seed of sampling, merges and DARE's masks")
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig, description="the generator and its sampling")
    cascade: CascadeConfig = Field(default_factory=CascadeConfig, description="search-dev stages of evaluation")
    preferences: PreferenceConfig = Field(default_factory=PreferenceConfig, description="how DPO pairs are chosen")
    dpo: DPOSettings = Field(default_factory=DPOSettings, description="DPO training of the generator")
    selection: SelectionConfig = Field(default_factory=SelectionConfig, description="the final pick on fresh problems")
    test: TestEvalConfig = Field(default_factory=TestEvalConfig, description="the one evaluation on test")
    backend: BackendConfig = Field(default_factory=BackendConfig, description="the backend merged models are scored on")
    sandbox: SandboxLimits = Field(default_factory=SandboxLimits, description="the sandbox's limits (sandbox.limits)")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig, description="evaluation on Ray actors")
    budget: BudgetConfig = Field(
        BudgetConfig(minutes=None), description="a wall-clock budget the run is sized to (none by default)"
    )
    baselines: MethodGrids = Field(
        {}, description="mergekit baselines tuned on the search-dev problems: method -> parameter -> values (none: {})"
    )

    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "DiscoveryConfig":
        return read_config(cls, path, overrides)
