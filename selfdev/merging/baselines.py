"""Tune the human merge baselines on the dev set over a declared grid, counting evaluations.

Every grid point is merged in memory with mergekit's own method (no disk round
trip), written into the already-loaded seed model and scored. Each result is
appended to `results.jsonl` the moment it finishes, keyed by the method, its
parameters and everything the score depends on, so a rerun (or a run resumed
after a crash) evaluates only the points still missing.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable


from evals.progress import figures
from seeds.task_vectors import TaskVectors
from selfdev.config import BaselinesConfig
from selfdev.experts_source import resolve_experts
from selfdev.merging.baseline_results import SEED_ROW, BaselineResult, ResultLog, best_per_method, format_params
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

    def context(self, split: str, examples: list) -> str:
        c = self.config
        return _digest(
            {
                "seed": str(self.task_vectors.seed.folder),
                "experts": [str(e.folder) for e in self.task_vectors.experts],
                "filter": c.filter,
                "split": self.task.split_info(examples).to_dict(),
                "backend": c.backend.model_dump(exclude=VLLM_MEMORY),
                "random_seed": c.random_seed,
            }
        )

    def run(self) -> dict:
        c = self.config
        dev = self.task.examples("dev", c.data_dir, c.dev_limit)
        points = ([(SEED_ROW, {})] if c.include_seed else []) + [(m, p) for m in c.methods for p in c.grid(m)]
        dev_rows = self._evaluate_all("dev", dev, points)
        test_rows = []
        if c.test_limit:
            best = best_per_method(dev_rows)
            test = self.task.examples("test", c.data_dir, c.test_limit)
            test_rows = self._evaluate_all("test", test, [(r.method, r.params) for r in best.values()])
        return write_report(self.out, c, dev_rows, test_rows)

    def _evaluate_all(self, split: str, examples: list, points: list[tuple[str, dict]]) -> list[BaselineResult]:
        context = self.context(split, examples)
        cached = self.results.load(context)
        rows = []
        start, evaluated = time.perf_counter(), 0
        # The seed row needs the model as loaded, before any merge overwrites it.
        for i, (method, params) in enumerate(sorted(points, key=lambda p: p[0] != SEED_ROW)):
            key = _digest({"method": method, "params": params, "split": split})
            label = f"{split} {method} {format_params(params)}".strip()
            if key in cached:
                rows.append(cached[key])
                self.log(f"[{i + 1}/{len(points)}] {label}: {cached[key].accuracy:.3f} (cached)")
                continue
            row = self._evaluate(key, context, method, params, split, examples)
            self.results.append(row)
            rows.append(row)
            evaluated += 1
            grid = figures(i + 1, len(points), evaluated, time.perf_counter() - start)  # the rate of evaluated points
            self.log(f"[{i + 1}/{len(points)}] {label}: {row.accuracy:.3f} ({row.eval_seconds:.0f}s); {split} grid {grid}")
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
            backend, self.task, examples, progress=self.progress, out_path=self.out / "evals" / f"{split}-{key}.jsonl"
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


def run_baselines(config: BaselinesConfig, *, log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Tune every configured method; writes results.jsonl, baselines.json and baselines.md to config.output."""
    return BaselineRunner(config, log=log, progress=progress).run()
