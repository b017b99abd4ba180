"""How fast this machine evaluates: the measurement a budget plan (selfdev.budget) is made from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from selfdev.config import DiscoveryConfig

# An evaluation of N problems in one batch costs probe * (FIXED + (1 - FIXED) * N / probe_n): a batch
# decodes until its longest answer ends, so part of its time does not shrink with fewer rows
# (10 problems took 40 s and 30 took 82 s on a 2-core Xeon: 53% fixed at 8).
FIXED = 0.45


@dataclass(frozen=True)
class Throughput:
    """Seconds the seed took to evaluate `problems` search-dev problems in each dtype."""

    problems: int
    eval_seconds: float  # discovery evaluation's dtype (float32)
    debate_seconds: float  # the debate's dtype (auto)
    eval_dtype: str
    debate_dtype: str
    cpu_capability: str

    def eval(self, n: float, *, debate: bool = False) -> float:
        """Estimated seconds to evaluate `n` problems (0 for none)."""
        if n <= 0:
            return 0.0
        probe = self.debate_seconds if debate else self.eval_seconds
        return probe * (FIXED + (1 - FIXED) * n / self.problems)


def measure(config: "DiscoveryConfig", seed: str, data_dir: Path | None, *, log: Callable[[str], None] = print) -> Throughput:
    """Time the seed on the first `probe_problems` search-dev problems, in the evaluation's and the debate's dtype.

    Run it in a process of its own (`selfdev.isolated.run_isolated`): the models it loads go when it ends.
    """
    import torch

    from evals.backends.dtype import resolve_dtype
    from evals.backends.registry import load_backend
    from evals.evaluate import evaluate
    from evals.tasks import get_task

    task = get_task(config.task)
    problems = task.examples("dev", data_dir, config.budget.probe_problems)
    options = config.backend.model_dump(exclude={"name"})
    eval_dtype = resolve_dtype(options.pop("dtype"), "cpu")
    debate_dtype = eval_dtype
    if config.experts.debate is not None:
        from seeds.debate import load_debate_config

        debate = load_debate_config(config.experts.debate, config.experts.debate_overrides)
        debate_dtype = resolve_dtype(debate.backend.dtype, "cpu")

    def seconds(dtype: str) -> float:
        backend = load_backend(config.backend.name, seed, dtype=dtype, **options)
        start = time.perf_counter()
        evaluate(backend, task, problems, progress=False)
        return time.perf_counter() - start

    eval_seconds = seconds(eval_dtype)
    log(f"budget: {len(problems)} problems took {eval_seconds:.0f} s in {eval_dtype} (merged models' evaluation)")
    debate_seconds = eval_seconds if debate_dtype == eval_dtype else seconds(debate_dtype)
    if debate_dtype != eval_dtype:
        log(f"budget: {len(problems)} problems took {debate_seconds:.0f} s in {debate_dtype} (the debate)")
    return Throughput(
        len(problems), eval_seconds, debate_seconds, eval_dtype, debate_dtype, torch.backends.cpu.get_cpu_capability()
    )


def experts_cached(config: "DiscoveryConfig") -> bool:
    """Whether the run's debate experts are already built (then the experts stage only loads them)."""
    if config.experts.debate is None:
        return True
    from seeds.debate import default_out_dir, load_debate_config

    debate = load_debate_config(config.experts.debate, config.experts.debate_overrides)
    return (default_out_dir(debate) / "experts.json").is_file()
