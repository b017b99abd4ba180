"""How fast this machine evaluates: the measurement a budget plan (selfdev.budget) is made from."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from seeds import resolve_model
from selfdev.errors import UserError

if TYPE_CHECKING:
    from selfdev.config import DiscoveryConfig

# An evaluation of N problems in one batch costs probe * (fixed + (1 - fixed) * N / probe_n): a batch
# decodes until its longest answer ends and small batches are bound by reading the weights, so part of
# its time does not shrink with fewer rows; every batch (backend.batch_size problems) pays it again.
# `measure` fits `fixed` from two probe sizes (a 2-core AVX512 EPYC in bfloat16x2: 27 problems 42 s,
# 55 problems 66 s, 73% fixed at 8; a 2-core Xeon in float32: 10 problems 40 s, 30 problems 82 s, 53%).
FIXED = 0.5  # when only one size was measured
# The most a measurement may call fixed. 4 and 8 problems resolve the per-problem cost poorly (the longest answer
# sets a batch's time): on a 2-core AVX512 EPYC without AMX they took 58 and 57 s, read as 95% fixed, and that
# plan took 34 search-dev and 69 test problems for 66 and 79 s; they took 104 and 224 s (69: two batches of 64
# and 5). At 75% and per batch the estimates are 103 and 208 s.
MAX_FIXED = 0.75


@dataclass(frozen=True)
class Throughput:
    """Seconds the seed took to evaluate `problems` search-dev problems in each dtype."""

    problems: int
    eval_seconds: float  # discovery evaluation's dtype (float32)
    debate_seconds: float  # the debate's dtype (auto)
    eval_dtype: str
    debate_dtype: str
    cpu_capability: str
    fixed: float = FIXED  # share of `eval_seconds` that does not shrink with fewer problems
    # The generator's parameters over the seed's (generator.model; 1.0 for a copy of the seed): sampling and DPO
    # cost that much more than the seed's measured evaluation. The 1.5B coder over the 0.5B seed: 3.1 (its replies
    # took 2.8x the seconds in bench_generator, AVX2).
    generator_scale: float = 1.0
    batch_size: int | None = None  # problems evaluated together (backend.batch_size); None: any number in one batch

    def eval(self, n: float, *, debate: bool = False) -> float:
        """Estimated seconds to evaluate `n` problems (0 for none), a batch at a time."""
        if n <= 0:
            return 0.0
        if self.batch_size is not None and n > self.batch_size:
            batches, rest = divmod(n, self.batch_size)
            return batches * self.eval(self.batch_size, debate=debate) + self.eval(rest, debate=debate)
        probe = self.debate_seconds if debate else self.eval_seconds
        return probe * (self.fixed + (1 - self.fixed) * n / self.problems)


def fixed_share(half_seconds: float, full_seconds: float) -> float:
    """The share of the full probe's time that does not shrink with fewer problems, from half and full runs."""
    per_problem_half = full_seconds - half_seconds  # the second half of the problems' own cost
    return min(MAX_FIXED, max(0.05, (full_seconds - 2 * per_problem_half) / full_seconds))


def measure(config: "DiscoveryConfig", seed: str, data_dir: Path | None, *, log: Callable[[str], None] = print) -> Throughput:
    """Time the seed on the first `probe_problems` search-dev problems, in the evaluation's and the debate's dtype.

    Run it in a process of its own (`selfdev.isolated.run_isolated`): the models it loads go when it ends.
    """
    import torch

    from evals.backends.dtype import resolve_dtype
    from evals.backends.registry import load_backend
    from evals.evaluate import evaluate
    from evals.progress import working
    from evals.tasks import get_task

    task = get_task(config.task)
    problems = task.examples("dev", data_dir, config.budget.probe_problems)
    eval_dtype = resolve_dtype(config.backend.dtype, "cpu")
    debate_dtype = eval_dtype
    if config.experts.debate is not None:
        from seeds.debate import load_debate_config

        debate = load_debate_config(config.experts.debate, config.experts.debate_overrides)
        debate_dtype = resolve_dtype(debate.backend.dtype, "cpu")

    def seconds(backend, subset) -> float:
        backend.update_weights({})  # as after a merge: the shared prompt prefix is computed again
        start = time.perf_counter()
        with working(f"budget: {len(subset)} problems"):
            evaluate(backend, task, subset, progress=False)
        return time.perf_counter() - start

    with working(f"budget: loading the seed ({eval_dtype}) and a warm-up"):
        backend = load_backend(seed, config.backend.model_copy(update={"dtype": eval_dtype}))
        warm_up(backend, task, problems[0])
    half = seconds(backend, problems[: len(problems) // 2])
    eval_seconds = seconds(backend, problems)
    fixed = fixed_share(half, eval_seconds)
    del backend
    log(
        f"budget: {len(problems) // 2} and {len(problems)} problems took {half:.0f} and {eval_seconds:.0f} s in "
        f"{eval_dtype} (merged models' evaluation; {fixed:.0%} of a batch's time does not shrink with fewer rows)"
    )
    debate_seconds = eval_seconds
    if debate_dtype != eval_dtype:
        debate = load_backend(seed, config.backend.model_copy(update={"dtype": debate_dtype}))
        warm_up(debate, task, problems[0])
        debate_seconds = seconds(debate, problems)
        log(f"budget: {len(problems)} problems took {debate_seconds:.0f} s in {debate_dtype} (the debate)")
    scale = 1.0
    if config.generator.model is not None:
        scale = parameters(resolve_model(config.generator.model)) / parameters(seed)
        log(f"budget: the generator has {scale:.2f}x the seed's parameters; sampling and DPO are costed so")
    return Throughput(
        len(problems), eval_seconds, debate_seconds, eval_dtype, debate_dtype, torch.backends.cpu.get_cpu_capability(),
        fixed, scale, config.backend.batch_size,
    )


def parameters(folder: str | Path) -> int:
    """Parameters of a model folder, without loading its weights: from the safetensors headers, else (a folder of
    pytorch_model.bin) from its config, built on the meta device."""
    import math

    from safetensors import safe_open

    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with safe_open(path, "pt") as f:
            total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())
    return total or _parameters_from_config(Path(folder))


def _parameters_from_config(folder: Path) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: neither safetensors weights nor a readable config.json to count parameters") from error
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return model.num_parameters()


def warm_up(backend, task, example) -> None:
    """A two-token generation, so the timed runs do not pay for first touches of the weights (page faults of
    memory-mapped files measured 4 problems slower than 8 under the AVX2 emulation)."""
    from evals.backends.base import SamplingParams
    from evals.prompts import build_prompt

    backend.generate([build_prompt(task, example.question, "chat")], SamplingParams(max_new_tokens=2, temperature=0.0))


def experts_cached(config: "DiscoveryConfig", overrides: dict) -> bool:
    """Whether the run's debate experts, trained with `overrides` laid over its debate config, are already
    built (then the experts stage only loads them)."""
    if config.experts.debate is None:
        return True
    from seeds.debate import default_out_dir, load_debate_config

    debate = load_debate_config(config.experts.debate, overrides)
    return (default_out_dir(debate) / "experts.json").is_file()


def expert_folders(config: "DiscoveryConfig", overrides: dict) -> list[str] | None:
    """The folders the run's experts stage would hand on, where they are known without building anything: given
    as models, or debate experts already built with `overrides`. None otherwise."""
    if config.experts.models:
        return [resolve_model(m) for m in config.experts.models]
    if config.experts.debate is None or not experts_cached(config, overrides):
        return None
    from seeds.debate import ExpertsManifest, default_out_dir, load_debate_config

    debate = load_debate_config(config.experts.debate, overrides)
    return ExpertsManifest.load(default_out_dir(debate) / "experts.json").experts
