"""The worker's side of a candidate: merge in the sandbox, load the merged weights, evaluate in a cascade.

`CandidateScorer` answers each job (selfdev.candidates) with a `Scored`; it
never sees the archive. `LocalExecutor` runs jobs in this process, one at a
time; `executors` gives a run's phases theirs: Ray actors started once for the
whole run (selfdev.distributed), or a fresh local one per phase, so the
generator and DPO get the memory between phases.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ContextManager, Iterator

import torch

from evals.evaluate import evaluate
from evals.tasks import Example, Task, get_task
from sandbox import CheckedCode, SandboxLimits, SandboxWorker
from seeds.task_vectors import TaskVectors
from selfdev import scores
from selfdev.candidates import Executor, Finished, Job
from selfdev.config import BackendConfig, CascadeConfig
from selfdev.errors import UserError
from selfdev.merging import MergeInputs, merge_generated
from selfdev.scores import Evaluation
from selfdev.stages import Scored

if TYPE_CHECKING:
    from selfdev.config import DistributedConfig


def score_examples(backend: object, task: Task, examples: list[Example]) -> Evaluation:
    """Which of `examples` the model loaded in `backend` answers correctly."""
    report = evaluate(backend, task, examples, progress=False)
    return Evaluation.from_records(report.records)


@dataclass
class DevScorer:
    """Scores the model currently loaded in `backend` on growing prefixes of the search-dev problems."""

    backend: object
    task: Task
    dev: list[Example]
    answers: list[bool] = field(default_factory=list)

    def reset(self) -> None:
        self.answers = []

    def score(self, n: int) -> Evaluation:
        n = min(n, len(self.dev))
        todo = self.dev[len(self.answers) : n]
        if todo:
            self.answers.extend(score_examples(self.backend, self.task, todo).correct)
        return Evaluation.of((ex.id for ex in self.dev[:n]), self.answers[:n])


class CandidateScorer:
    """Merges a candidate's code in the sandbox, loads the merged weights into the backend, scores them."""

    def __init__(
        self,
        worker: SandboxWorker,
        inputs: MergeInputs,
        dev: DevScorer,
        cascade: CascadeConfig,
        *,
        merge_seed: int = 0,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.worker, self.inputs, self.dev = worker, inputs, dev
        self.cascade_config, self.merge_seed, self.dtype = cascade, merge_seed, dtype

    def cascade(self, code: CheckedCode | str | None, bar: Evaluation | None, *, full: bool = False) -> Scored:
        """Over the dev slices, on while not significantly worse than `bar` (the best so far); `full`: no early exit.

        No code is the seed itself.
        """
        timings: dict[str, float] = {}
        failed = self._load(code, timings)
        if failed is not None:
            return failed
        start = time.perf_counter()
        for n in self.cascade_config.slices:
            dev = self.dev.score(n)
            if not full and bar is not None and scores.significantly_worse(dev, bar, self.cascade_config.alpha):
                break
        timings["evaluate"] = time.perf_counter() - start
        return Scored(evaluation=dev, timings=timings)

    def held_out(self, code: CheckedCode | str | None, examples: list[Example]) -> Scored:
        """A recorded candidate, merged again, on selection or test problems; if the merge fails now, why."""
        timings: dict[str, float] = {}
        failed = self._load(code, timings)
        if failed is not None:
            return failed
        return Scored(evaluation=score_examples(self.dev.backend, self.dev.task, examples), timings=timings)

    def _load(self, code: CheckedCode | str | None, timings: dict[str, float]) -> Scored | None:
        """Merge and load `code`'s model (None: the seed); a failed merge's `Scored`, else None."""
        weights = self.inputs.base
        if code is not None:
            start = time.perf_counter()
            merged, diagnosis = merge_generated(self.worker, code, self.inputs, seed=self.merge_seed, dtype=self.dtype)
            timings["merge"] = time.perf_counter() - start
            if merged is None:
                return Scored.failed(diagnosis, timings)
            weights = merged
        self.dev.backend.update_weights(weights)
        self.dev.reset()
        return None


@dataclass(frozen=True)
class ScorerSpec:
    """Everything a worker needs to build its scorer; picklable, so a Ray actor builds what the local loop does.

    Paths must be readable where the worker runs (on a cluster: shared storage, or hub ids).
    """

    seed: str
    experts: list[str]
    filter: str
    task: str
    dev: list[Example]
    backend: BackendConfig
    cascade: CascadeConfig
    sandbox: SandboxLimits
    merge_seed: int = 0

    def scorer(self, worker: SandboxWorker) -> CandidateScorer:
        """The seed and task vectors (the latter staged in `worker`'s shared memory) and an evaluation model."""
        from evals.backends.registry import load_backend

        inputs = MergeInputs.load(TaskVectors(self.seed, self.experts, self.filter), worker)
        backend = load_backend(self.seed, self.backend)
        dev = DevScorer(backend, get_task(self.task), self.dev)
        return CandidateScorer(worker, inputs, dev, self.cascade, merge_seed=self.merge_seed)


class LocalExecutor:
    """The worker's part in this process, one job at a time: it runs when submitted and is collected next."""

    def __init__(self, scorer: CandidateScorer) -> None:
        self.scorer: CandidateScorer | None = scorer
        self.done: list[Finished] = []

    def free(self) -> bool:
        return not self.done  # so each result is recorded before the next job runs

    def busy(self) -> bool:
        return bool(self.done)

    def submit(self, job: Job) -> None:
        assert self.scorer is not None, "submit after close"
        self.done.append(Finished(job, job.run(self.scorer)))

    def collect(self, *, wait: bool) -> list[Finished]:
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        """Drop the evaluation model and the merge inputs, so the generator and DPO get their memory."""
        if self.scorer is not None:
            self.scorer.inputs.close()
        self.scorer = None


@contextlib.contextmanager
def local_executor(spec: ScorerSpec) -> Iterator[LocalExecutor]:
    """A sandbox worker holding the task vectors in shared memory and an evaluation model, for one phase."""
    with SandboxWorker(spec.sandbox) as worker:
        local = LocalExecutor(spec.scorer(worker))
        try:
            yield local
        finally:
            local.close()
            gc.collect()


Phase = Callable[[], ContextManager[Executor]]


@contextlib.contextmanager
def executors(distributed: DistributedConfig, spec: ScorerSpec, log: Callable[[str], None]) -> Iterator[Phase]:
    """For the run: `phase()` gives each phase its executor, the Ray actors (started once here) or a local one."""
    if not distributed.enabled:
        yield lambda: local_executor(spec)
        return
    try:
        from selfdev.distributed import actor_pool
    except ImportError as e:
        raise UserError(f"distributed.enabled needs Ray ({e}): pip install '.[dist]'") from None
    with actor_pool(distributed, spec, log) as pool:
        yield lambda: contextlib.nullcontext(pool)
