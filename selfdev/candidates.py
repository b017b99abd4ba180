"""One candidate from reply to record, split where the work happens.

- Driver (`Screen`, `CandidateQueue`): extract the code, probe it in the
  sandbox for a fingerprint, reuse the score of an earlier candidate with the
  same fingerprint, hand the rest to a worker, and record every result in the
  archive (this process is its single writer).
- Worker (`CandidateScorer`, run through a `Job`): merge in the sandbox, load
  the merged weights, evaluate in a cascade. `LocalScoring` runs it in this
  process; selfdev.distributed runs it on Ray actors.

The cascade spends the evaluation budget where it matters: every candidate is
scored on a small dev slice first, and goes on to the larger slices while it is
not significantly worse than the best candidate so far on the problems both saw
(paired, `selfdev.scores.significantly_worse`); only the new problems of a
larger slice are generated, the earlier answers are kept.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import torch

from evals.evaluate import evaluate
from evals.tasks import Example, Task, get_task
from sandbox import Diagnosis, SandboxLimits, SandboxWorker, TaskVectorSet
from seeds.task_vectors import TaskVectors
from selfdev import scores
from selfdev.archive import Archive, Candidate
from selfdev.config import BackendConfig, CascadeConfig
from selfdev.generator.prompt import extract_code
from selfdev.merging import MergeInputs, merge_generated
from selfdev.scores import Evaluation


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


def reuse_score(candidate: Candidate, original: Candidate) -> Candidate:
    candidate.duplicate_of = original.id
    candidate.dev = original.dev
    return candidate


# -- driver side ---------------------------------------------------------------------------


class Screen:
    """Extract, probe, deduplicate: everything before a merge, cheap enough for the driver."""

    def __init__(
        self, worker: SandboxWorker, archive: Archive, *, merge_seed: int = 0, probe_set: TaskVectorSet | None = None
    ) -> None:
        # `probe_set`: a few real parameters' task vectors in `worker` (sandbox.choose_probe_tensors); candidates that
        # merge them differently get different fingerprints even when they agree on the synthetic probe tensors.
        self.worker, self.archive, self.merge_seed, self.probe_set = worker, archive, merge_seed, probe_set

    def probe(self, code: str) -> Diagnosis:
        """The sandbox's verdict and fingerprint of `code`; every fingerprint of a run is made here, comparably."""
        return self.worker.probe(code, seed=self.merge_seed, task_vectors=self.probe_set)

    def __call__(self, candidate: Candidate, *, dedupe: bool = True) -> bool:
        """Fill status and fingerprint; True when the candidate still needs a merge and an evaluation.

        With `dedupe`, a function already evaluated (same fingerprint) reuses that score.
        """
        if candidate.code is None:
            candidate.code = extract_code(candidate.reply or "")
        if candidate.code is None:
            candidate.status, candidate.reason = "no_code", "the reply has no code block defining merge()"
            return False

        start = time.perf_counter()
        probe = self.probe(candidate.code)
        candidate.timings["probe"] = time.perf_counter() - start
        candidate.status, candidate.reason, candidate.line = probe.status.value, probe.reason or None, probe.line
        if not probe.ok:
            return False
        candidate.fingerprint = probe.fingerprint

        seen = self.archive.by_fingerprint(probe.fingerprint) if dedupe else None
        if seen is not None:
            reuse_score(candidate, seen)
            return False
        return True


@dataclass
class Job:
    """A screened candidate and what a worker does with it: the dev cascade, or a held-out split."""

    candidate: Candidate
    bar: Evaluation | None = None  # the best candidate's search-dev evaluation when it was dispatched
    full: bool = False  # every dev slice, no early exit (references)
    held_out: tuple[str, list[Example]] | None = None  # ("selection" | "test", problems) instead of the cascade

    def run(self, scorer: "CandidateScorer") -> Candidate:
        if self.held_out is not None:
            split, examples = self.held_out
            return scorer.held_out(self.candidate, split, examples)
        return scorer.score(self.candidate, self.bar, full=self.full)


class Scoring(Protocol):
    """Where jobs run: this process (`LocalScoring`) or Ray actors (`selfdev.distributed.ActorPool`)."""

    def free(self) -> bool:
        """A worker could start a job now."""
        ...

    def busy(self) -> bool:
        """Some job has not been collected yet."""
        ...

    def submit(self, job: Job) -> None: ...

    def collect(self, *, wait: bool) -> list[Candidate]:
        """The candidates of jobs finished since the last call; `wait` blocks until there is at least one."""
        ...


def run_jobs(scoring: Scoring, jobs: Iterable[Job]) -> Iterator[Candidate]:
    """Each job's candidate as it finishes (in any order); a job starts when a worker is free."""
    todo = deque(jobs)
    while todo or scoring.busy():
        while todo and scoring.free():
            scoring.submit(todo.popleft())
        yield from scoring.collect(wait=True)


class CandidateQueue:
    """One iteration's candidates on their way through screening, the workers and into the archive.

    Each result is recorded the moment it arrives. A candidate whose function is
    already queued or being evaluated waits for that score instead of being
    evaluated a second time; if that evaluation fails, the next one with the
    function gets its own, as it would have one after the other.
    """

    def __init__(self, screen: Screen, scoring: Scoring, archive: Archive) -> None:
        self.screen, self.scoring, self.archive = screen, scoring, archive
        # The cascade's bar, kept as results arrive instead of re-read from the archive per dispatch.
        self.best = scores.best(archive.candidates(kind=None))
        self.backlog: deque[Candidate] = deque()  # screened, waiting for a free worker
        self.pending: dict[str, Candidate] = {}  # fingerprint -> the candidate queued or being evaluated for it
        self.waiting: dict[str, list[Candidate]] = {}  # fingerprint -> later candidates with the same function

    def put(self, candidate: Candidate) -> list[Candidate]:
        """Screen a new candidate and queue it if it needs a worker; returns the candidates recorded meanwhile."""
        recorded = []
        if not self.screen(candidate):
            recorded.append(self._record(candidate))
        elif candidate.fingerprint in self.pending:
            self.waiting.setdefault(candidate.fingerprint, []).append(candidate)
        else:
            self._enqueue(candidate)
        return recorded + self._step(wait=False)

    def drain(self) -> Iterator[Candidate]:
        """Every candidate still queued or running, as it is recorded."""
        while self.pending:
            yield from self._step(wait=True)

    def _enqueue(self, candidate: Candidate) -> None:
        self.pending[candidate.fingerprint] = candidate
        self.backlog.append(candidate)

    def _step(self, *, wait: bool) -> list[Candidate]:
        self._dispatch()
        recorded = []
        for done in self.scoring.collect(wait=wait):
            del self.pending[done.fingerprint]
            recorded.append(self._record(done))
            recorded += self._release(done.fingerprint)
        self._dispatch()  # before the driver goes back to screening, so no worker sits idle
        return recorded

    def _dispatch(self) -> None:
        # The cascade bar is read now, so a candidate is compared with everything recorded before it starts.
        while self.backlog and self.scoring.free():
            bar = None if self.best is None else self.best.dev
            self.scoring.submit(Job(self.backlog.popleft(), bar=bar))

    def _release(self, fingerprint: str) -> list[Candidate]:
        waiting = self.waiting.pop(fingerprint, [])
        seen = self.archive.by_fingerprint(fingerprint)
        if seen is None and waiting:  # the evaluation failed: the next candidate with this function gets its own
            self._enqueue(waiting.pop(0))
            if waiting:
                self.waiting[fingerprint] = waiting
            return []
        return [self._record(reuse_score(c, seen)) for c in waiting]

    def _record(self, candidate: Candidate) -> Candidate:
        self.archive.add(candidate)
        if candidate.dev is not None and (self.best is None or scores.rank_key(candidate) < scores.rank_key(self.best)):
            self.best = candidate
        return candidate


# -- worker side ---------------------------------------------------------------------------


class CandidateScorer:
    """Merges a screened candidate in the sandbox, loads the merged weights into the backend, scores them."""

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
        self.cascade, self.merge_seed, self.dtype = cascade, merge_seed, dtype

    def score(self, candidate: Candidate, bar: Evaluation | None, *, full: bool = False) -> Candidate:
        """Cascade over the dev slices; go on while not significantly worse than `bar` (the best so far).

        A candidate without code is the seed itself; `full` skips the early exit.
        """
        if not self._load(candidate):
            return candidate
        start = time.perf_counter()
        for n in self.cascade.slices:
            candidate.dev = self.dev.score(n)
            if not full and bar is not None and scores.significantly_worse(candidate.dev, bar, self.cascade.alpha):
                break
        candidate.timings["evaluate"] = time.perf_counter() - start
        return candidate

    def held_out(self, candidate: Candidate, split: str, examples: list[Example]) -> Candidate:
        """A recorded candidate, merged again, on selection or test problems; if the merge fails now, the reason."""
        if self._load(candidate):
            setattr(candidate, split, score_examples(self.dev.backend, self.dev.task, examples))
        return candidate

    def _load(self, candidate: Candidate) -> bool:
        weights = self.inputs.base
        if candidate.code is not None:
            start = time.perf_counter()
            merged, diagnosis = merge_generated(
                self.worker, candidate.code, self.inputs, seed=self.merge_seed, dtype=self.dtype
            )
            candidate.timings["merge"] = time.perf_counter() - start
            if merged is None:
                candidate.status, candidate.reason, candidate.line = diagnosis.status.value, diagnosis.reason, diagnosis.line
                return False
            weights = merged
        self.dev.backend.update_weights(weights)
        self.dev.reset()
        return True


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


class LocalScoring:
    """The worker's part in this process, one job at a time: it runs when submitted and is collected next."""

    def __init__(self, scorer: CandidateScorer) -> None:
        self.scorer: CandidateScorer | None = scorer
        self.done: list[Candidate] = []

    def free(self) -> bool:
        return not self.done  # so each result is recorded before the next job runs

    def busy(self) -> bool:
        return bool(self.done)

    def submit(self, job: Job) -> None:
        assert self.scorer is not None, "submit after close"
        self.done.append(job.run(self.scorer))

    def collect(self, *, wait: bool) -> list[Candidate]:
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        """Drop the evaluation model and the merge inputs, so the generator and DPO get their memory."""
        if self.scorer is not None:
            self.scorer.inputs.close()
        self.scorer = None
