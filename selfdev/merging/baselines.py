"""Tune the human merge baselines on the dev set over a declared grid, counting evaluations.

Every grid point is merged in memory with mergekit's own method (no disk round
trip), written into the already-loaded seed model and scored. Each result is
appended to `results.jsonl` the moment it finishes, keyed by the method, its
parameters and everything the score depends on, with every problem's outcome, so
a rerun (or a run resumed after a crash, or one on more problems) evaluates only
the points and problems still missing. `pending` tells, without a model, what a
run would still evaluate: the budget plans with it.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from evals.progress import figures
from seeds import resolve_model
from seeds.task_vectors import TaskVectors
from selfdev.config import BaselinesConfig
from selfdev.experts_source import resolve_experts
from selfdev.merging.baseline_results import (
    SEED_ROW, BaselineResult, GridWork, ResultLog, best_per_method, format_params, known_outcomes, over,
)
from selfdev.merging.baselines_report import write_report
from selfdev.merging.inmemory import merge_with_method
from selfdev.scores import Evaluation

# vLLM memory knobs decide no score; left out of a point's key so points finished before they existed are reused.
VLLM_MEMORY = {"max_model_len", "gpu_memory_utilization"}


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class BaselineRunner:
    """One `selfdev baselines` run: owns the task vectors, the loaded backend and the result log."""

    def __init__(self, config: BaselinesConfig, *, log: Callable[[str], None] = print, progress: bool = True) -> None:
        from evals.tasks import get_task

        self.config, self.log, self.progress = config, log, progress
        self.out = config.output
        self.out.mkdir(parents=True, exist_ok=True)
        config.dump(self.out / "config.yaml")
        experts = resolve_experts(
            config.experts, config.seed, filter=config.filter, data_dir=config.data_dir, log=log, task=config.task
        )
        self.task_vectors = TaskVectors(config.seed, experts, config.filter)
        self.task = get_task(config.task)
        self.results = ResultLog(self.out / "results.jsonl")
        self._backend = None
        self._merged = False  # whether the loaded model holds merged weights rather than the seed's

    @property
    def backend(self):
        # Loaded on first need, so a rerun whose points are all cached loads no model.
        if self._backend is None:
            from evals.backends.registry import load_backend

            self._backend = load_backend(str(self.task_vectors.seed.folder), self.config.backend)
        return self._backend

    def run(self) -> dict:
        c = self.config
        dev = self.task.examples("dev", c.data_dir, c.dev_limit)
        dev_rows = self._evaluate_all("dev", dev, grid_points(c))
        test_rows = []
        if c.test_limit:
            best = best_per_method(dev_rows)
            test = self.task.examples("test", c.data_dir, c.test_limit)
            test_rows = self._evaluate_all("test", test, [(r.method, r.params) for r in best.values()])
        return write_report(self.out, c, dev_rows, test_rows)

    def _evaluate_all(self, split: str, examples: list, points: list[tuple[str, dict]]) -> list[BaselineResult]:
        context = _context(self.config, self.task_vectors, self.task, split)
        cached = self.results.load(context)
        ids = [str(ex.id) for ex in examples]
        rows = []
        start, evaluated = time.perf_counter(), 0
        # The seed row needs the model as loaded, before any merge overwrites it.
        for i, (method, params) in enumerate(sorted(points, key=lambda p: p[0] != SEED_ROW)):
            key = _point_key(method, params, split)
            label = f"{split} {method} {format_params(params)}".strip()
            earlier = cached.get(key, [])
            known = known_outcomes(earlier)
            missing = [ex for ex in examples if str(ex.id) not in known]
            if not missing:
                rows.append(over(earlier, ids))
                self.log(f"[{i + 1}/{len(points)}] {label}: {rows[-1].accuracy:.3f} (cached)")
                continue
            fresh = self._evaluate(key, context, method, params, split, missing)
            self.results.append(fresh)
            rows.append(over(earlier + [fresh], ids))
            evaluated += 1
            grid = figures(i + 1, len(points), evaluated, time.perf_counter() - start)  # the rate of evaluated points
            reused = f", {len(examples) - len(missing)} of {len(examples)} problems cached" if earlier else ""
            self.log(
                f"[{i + 1}/{len(points)}] {label}: {rows[-1].accuracy:.3f} ({fresh.eval_seconds:.0f}s{reused}); "
                f"{split} grid {grid}"
            )
        return rows

    def _evaluate(self, key: str, context: str, method: str, params: dict, split: str, examples: list) -> BaselineResult:
        from evals.evaluate import evaluate

        backend = self.backend
        start = time.perf_counter()
        if method == SEED_ROW:
            if self._merged:
                backend.update_weights({n: self.task_vectors.base(n) for n in self.task_vectors.names})
        else:
            merged = merge_with_method(
                self.task_vectors, method, params, dtype=backend.weight_dtype, random_seed=self.config.random_seed,
                progress=self.progress,
            )
            backend.update_weights(merged)
            del merged
            self._merged = True
        merge_seconds = time.perf_counter() - start
        report = evaluate(
            backend, self.task, examples, progress=self.progress,
            out_path=self.out / "evals" / f"{split}-{key}-{_digest([ex.id for ex in examples])[:8]}.jsonl",
        )
        return BaselineResult(
            key=key,
            context=context,
            method=method,
            params=params,
            split=split,
            accuracy=report.accuracy,
            correct=report.correct,
            n=report.n,
            eval_seconds=report.seconds + report.scoring_seconds,
            merge_seconds=merge_seconds,
            outcomes=Evaluation.from_records(report.records).to_json(),
        )


def grid_points(config: BaselinesConfig) -> list[tuple[str, dict]]:
    """(method, parameters) of every point the dev grid evaluates, the unmerged seed's row first if included."""
    return ([(SEED_ROW, {})] if config.include_seed else []) + [(m, p) for m in config.methods for p in config.grid(m)]


def pending(config: BaselinesConfig) -> GridWork:
    """What `run_baselines(config)` would still evaluate, read from its log: no model is loaded, nothing written.

    A method's test point is its tuned one, known only where its whole dev grid is in the log; else the method's
    test problems all count as pending. Experts must be given as folders (`experts.models`): a debate source would
    be built first.
    """
    from evals.tasks import get_task

    c = config
    if not c.experts.models:
        raise ValueError("pending() needs the experts as folders")
    task = get_task(c.task)
    vectors = TaskVectors(c.seed, [resolve_model(m) for m in c.experts.models], c.filter)
    log = ResultLog(c.output / "results.jsonl")
    dev = [str(ex.id) for ex in task.examples("dev", c.data_dir, c.dev_limit)]
    cached = log.load(_context(c, vectors, task, "dev"))
    dev_work, dev_rows = [], []
    for method, params in grid_points(c):
        earlier = cached.get(_point_key(method, params, "dev"), [])
        dev_work.append((method, len(set(dev) - known_outcomes(earlier).keys())))
        if dev_work[-1][1] == 0:
            dev_rows.append(over(earlier, dev))
    test_work = {}
    if c.test_limit:
        test = [str(ex.id) for ex in task.examples("test", c.data_dir, c.test_limit)]
        tested = log.load(_context(c, vectors, task, "test"))
        tuned = best_per_method(dev_rows)
        for method in dict.fromkeys(m for m, _ in dev_work):
            whole = all(n == 0 for m, n in dev_work if m == method)  # else its tuned point is not known yet
            row = tuned[method] if whole else None
            earlier = tested.get(_point_key(row.method, row.params, "test"), []) if row else []
            test_work[method] = len(set(test) - known_outcomes(earlier).keys())
    return GridWork(dev=dev_work, test=test_work)


def _point_key(method: str, params: dict, split: str) -> str:
    return _digest({"method": method, "params": params, "split": split})


def _context(config: BaselinesConfig, vectors: TaskVectors, task, split: str) -> str:
    """What a point's score depends on besides the method, its parameters and the problems (each outcome is kept
    per problem): the models, the tensors merged, the split's definition, the backend, the merge's random seed."""
    return _digest(
        {
            "seed": str(vectors.seed.folder),
            "experts": [str(e.folder) for e in vectors.experts],
            "filter": config.filter,
            "split": {"task": task.name, "split": split, "seed": task.split_seed, "strategy": task.split_strategy,
                      "sizes": dict(task.split_sizes)},
            "backend": config.backend.model_dump(exclude=VLLM_MEMORY),
            "random_seed": config.random_seed,
        }
    )


def run_baselines(config: BaselinesConfig, *, log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Tune every configured method; writes results.jsonl, baselines.json and baselines.md to config.output."""
    return BaselineRunner(config, log=log, progress=progress).run()
