"""Every config schema of `selfdev`, validated completely when a file is read; importing them loads no torch.

- `DiscoveryConfig` (discovery.py): `selfdev discover`; its sections in search.py
  (generator, cascade, preferences, DPO) and run.py (budget, selection, test, distributed).
- `BaselinesConfig` (baselines.py): `selfdev baselines`; the method grids both share.
- `MergeSetup`, `ExpertsSource` (experts.py): the seed, its experts, the tensors and the task both share.

Schemas of the lower layers, which their own code imports and which these use:
`evals.backends.config.BackendConfig` (every stage's backend), `sandbox.limits.SandboxLimits`,
`seeds.debate.config.DebateConfig` (`selfdev experts`), `seeds.training.TrainingSettings`.
A problem with a file is a `ConfigError`: one line naming the file and the field.
"""

from evals.backends.config import BackendConfig
from sandbox.limits import SandboxLimits
from selfdev.config.baselines import BaselinesConfig, GridValue
from selfdev.config.discovery import DiscoveryConfig
from selfdev.config.experts import ExpertsSource, MergeSetup, SyntheticExperts
from selfdev.config.loading import ConfigError
from selfdev.config.run import BudgetConfig, DistributedConfig, SelectionConfig, TestEvalConfig
from selfdev.config.search import CascadeConfig, DPOSettings, GeneratorConfig, PreferenceConfig

__all__ = [
    "BackendConfig",
    "BaselinesConfig",
    "BudgetConfig",
    "CascadeConfig",
    "ConfigError",
    "DPOSettings",
    "DiscoveryConfig",
    "DistributedConfig",
    "ExpertsSource",
    "GeneratorConfig",
    "GridValue",
    "MergeSetup",
    "PreferenceConfig",
    "SandboxLimits",
    "SelectionConfig",
    "SyntheticExperts",
    "TestEvalConfig",
]
