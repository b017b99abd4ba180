"""The experts a run merges, as configured: named models, debate-finetuned copies of the seed, or perturbations.

One resolver, shared by `selfdev discover` and `selfdev baselines`; the schema is `selfdev.config.ExpertsSource`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from seeds import resolve_model
from selfdev.config.experts import ExpertsSource
from selfdev.errors import UserError


def resolve_experts(
    source: ExpertsSource,
    seed: str,
    *,
    filter: str,
    data_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
    task: str | None = None,
) -> list[str]:
    """Expert folders for `source`; debate experts are built by `selfdev experts`' pipeline, or reused.

    With `task` (the task the run scores merges on), experts that would train on its dev or test
    problems are refused first (`refuse_contamination`).
    """
    if task is not None:
        refuse_contamination(source, task, data_dir)
    if source.models:
        return [resolve_model(m) for m in source.models]
    if source.debate is not None:
        return _debate_experts(source.debate, source.debate_overrides, seed, data_dir, log)
    from seeds.synthetic import synthetic_experts

    s = source.synthetic  # validation admits exactly one of the three
    log(f"experts: {s.count} seeded perturbations of the seed (scale {s.scale}), cached for later runs")
    paths = synthetic_experts(seed, s.count, s.scale, filter=filter, shard_bytes=s.shard_mb * 2**20)
    return [str(p) for p in paths]


def refuse_contamination(source: ExpertsSource, task: str, data_dir: str | Path | None = None) -> None:
    """A one-line UserError when `source`'s debate trains on problems of `task`'s dev or test split.

    Only debate experts name their training problems; named models and synthetic experts are not checked.
    """
    if source.debate is None:
        return
    from evals.contamination import held_out_overlap
    from evals.tasks import get_task
    from seeds.debate import load_debate_config, training_problem_ids

    debate = load_debate_config(source.debate, source.debate_overrides)
    training = training_problem_ids(debate, data_dir, task=task)
    overlap = held_out_overlap(training, get_task(task), data_dir)
    if overlap:
        found = ", ".join(f"{len(ids)} of its {split} split" for split, ids in overlap.items())
        first = next(iter(overlap.values()))[0]
        raise UserError(
            f"experts.debate: {source.debate} trains on {task} problems this run scores merges on "
            f"({found}, e.g. {first}); train on another split (train) or task"
        )


def _debate_experts(
    config_path: Path, overrides: dict[str, Any], seed: str, data_dir: str | Path | None, log
) -> list[str]:
    from seeds.debate import build_experts, default_out_dir, load_debate_config

    debate = load_debate_config(config_path, overrides)
    if Path(resolve_model(debate.seed)).resolve() != Path(resolve_model(seed)).resolve():
        raise UserError(
            f"experts.debate: {config_path} finetunes {debate.seed!r}, not this run's seed {seed!r}; "
            "task vectors need experts made from the same seed"
        )
    out = default_out_dir(debate)
    log(f"experts: multiagent debate finetuning ({config_path}) in {out}; finished stages are reused")
    return build_experts(debate, out, data_dir=data_dir, log=log).experts
