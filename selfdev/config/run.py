"""How a run is sized and finished: the budget, the final pick, the test, distributed evaluation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class BudgetConfig(BaseModel):
    """How long the whole run may take, and how the run is sized to it (selfdev.budget)."""

    model_config = ConfigDict(extra="forbid")

    minutes: float | None = Field(
        55.0, gt=0, description="wall-clock budget of the run (experts, baselines, discovery, test); None: none"
    )
    fill: float = Field(0.9, gt=0, le=1, description="share of the budget the plan fills, the rest is margin")
    probe_problems: int = Field(8, ge=2, description="search-dev problems the seed evaluates to measure the machine")
    min_scale: float = Field(0.25, gt=0, description="problem counts are never cut below this share of the config's")
    max_scale: float = Field(2.0, ge=1, description="nor raised above this share (a fast machine gets more problems)")
    dpo_share: float = Field(
        0.15, gt=0, le=1, description="the DPOs take at most this share of the budget: steps beyond it (dpo.max_steps) "
        "are cut before problems are, as the scores' intervals are what every decision rests on",
    )


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

    enabled: bool = Field(False, description="evaluate candidates on Ray actors")
    actors: int = Field(1, ge=1, description="one per GPU, or per tensor-parallel group")
    address: str | None = Field(
        None, description='a running Ray cluster ("auto", "ray://head:10001"); None: start one on this machine'
    )
    num_cpus_per_actor: float = Field(1, ge=0, description="CPUs Ray reserves for each actor")
    num_gpus_per_actor: float = Field(0, ge=0, description="1 on GPU machines; the group's size for tensor parallelism")
    max_restarts: int = Field(
        1, ge=-1, description="Ray restarts a crashed actor this many times (-1: always); a job it was running is "
        "retried elsewhere either way",
    )
