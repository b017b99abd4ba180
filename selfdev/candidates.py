"""One candidate from screening to its archive row, on the driver: the jobs workers run, the queue, the recorder.

- The driver screens each sample (selfdev.screen), makes its record
  (`selfdev.stages.record_of`) and hands it to the `CandidateQueue`: a failure or
  a duplicate of a recorded function is recorded at once, a function already
  queued or running waits for that score, the rest becomes a `CascadeJob`.
- A worker (selfdev.scoring: this process, or a Ray actor in
  selfdev.distributed, both an `Executor`) runs the job and answers with a
  `Scored`; the queue records `Finished.record` (the `Recorder` is the
  archive's single writer and keeps the cascade's bar as rows arrive).

The cascade spends the evaluation budget where it matters: every candidate is
scored on a small dev slice first, and goes on to the larger slices while it is
not significantly worse than the best candidate so far on the problems both saw
(paired, `selfdev.scores.significantly_worse`); only the new problems of a
larger slice are generated, the earlier answers are kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterable, Iterator, Protocol

from evals.tasks import Example
from selfdev import scores
from selfdev.archive import Archive
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord, Scored

if TYPE_CHECKING:
    from sandbox import CheckedCode
    from selfdev.scoring import CandidateScorer


# -- jobs: what a worker does with a record ---------------------------------------------------


@dataclass(frozen=True)
class CascadeJob:
    """A new candidate on the search-dev cascade: it stops once significantly worse than `bar`, the best so far."""

    record: CandidateRecord
    checked: CheckedCode | None  # the code as the screen's static gate passed it: the merge does not check again
    bar: Evaluation | None
    split: ClassVar[str] = "dev"

    def run(self, scorer: CandidateScorer) -> Scored:
        return scorer.cascade(self.checked, self.bar)


@dataclass(frozen=True)
class ReferenceJob:
    """A reference (the seed without code, task arithmetic) on every search-dev slice, with no early exit."""

    record: CandidateRecord
    checked: CheckedCode | None = None
    split: ClassVar[str] = "dev"

    def run(self, scorer: CandidateScorer) -> Scored:
        return scorer.cascade(self.checked, None, full=True)


@dataclass(frozen=True)
class HeldOutJob:
    """A recorded candidate, merged again, on the selection or test problems."""

    record: CandidateRecord
    split: str  # "selection" or "test"
    examples: list[Example]

    def run(self, scorer: CandidateScorer) -> Scored:
        return scorer.held_out(self.record.code, self.examples)


Job = CascadeJob | ReferenceJob | HeldOutJob


@dataclass(frozen=True)
class Finished:
    """A job and what its worker measured (or, for a job lost with its Ray actors, why nothing was)."""

    job: Job
    scored: Scored

    @property
    def record(self) -> CandidateRecord:
        return self.job.record.scored(self.job.split, self.scored)


class Executor(Protocol):
    """Where jobs run: this process (`selfdev.scoring.LocalExecutor`) or Ray actors (`selfdev.distributed.ActorPool`)."""

    def free(self) -> bool:
        """A worker could start a job now."""
        ...

    def busy(self) -> bool:
        """Some job has not been collected yet."""
        ...

    def submit(self, job: Job) -> None: ...

    def collect(self, *, wait: bool) -> list[Finished]:
        """The jobs finished since the last call; `wait` blocks until there is at least one."""
        ...


def run_jobs(executor: Executor, jobs: Iterable[Job]) -> Iterator[Finished]:
    """Each job as it finishes (in any order); a job starts when a worker is free."""
    todo = deque(jobs)
    while todo or executor.busy():
        while todo and executor.free():
            executor.submit(todo.popleft())
        yield from executor.collect(wait=True)


# -- the driver's records --------------------------------------------------------------------


class Recorder:
    """The archive's single writer during a run; keeps the cascade's bar (the best search-dev evaluation so far).

    The bar is read from the archive once, when the run (or its resume) starts,
    and then kept as rows arrive, instead of re-ranking the archive per dispatch.
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.best = scores.best(archive.candidates(kind=None))

    @property
    def bar(self) -> Evaluation | None:
        return None if self.best is None else self.best.dev

    def add(self, record: CandidateRecord) -> CandidateRecord:
        """Store `record`; returns it as stored (with its id)."""
        stored = record.with_id(self.archive.add(record))
        if stored.dev is not None and (self.best is None or scores.rank_key(stored) < scores.rank_key(self.best)):
            self.best = stored
        return stored


class CandidateQueue:
    """One iteration's screened candidates on their way through the workers and into the archive.

    Each result is recorded the moment it arrives. A candidate whose function
    (fingerprint) is already recorded takes that score; one whose function is
    queued or being evaluated waits for that score instead of being evaluated
    a second time; if that evaluation fails, the next one with the function
    gets its own, as it would have one after the other.
    """

    def __init__(self, executor: Executor, recorder: Recorder) -> None:
        self.executor, self.recorder, self.archive = executor, recorder, recorder.archive
        self.backlog: deque[tuple[CandidateRecord, CheckedCode | None]] = deque()  # waiting for a free worker
        self.pending: set[str] = set()  # fingerprints queued or being evaluated
        self.waiting: dict[str, list[tuple[CandidateRecord, CheckedCode | None]]] = {}  # later ones with the same function

    def put(self, record: CandidateRecord, checked: CheckedCode | None) -> list[CandidateRecord]:
        """A screened candidate (`checked`: its code, if the screen passed it); returns the records stored meanwhile."""
        recorded = []
        seen = self.archive.by_fingerprint(record.fingerprint) if record.executable else None
        if not record.executable:
            recorded.append(self.recorder.add(record))
        elif seen is not None:
            recorded.append(self.recorder.add(record.reusing(seen)))
        elif record.fingerprint in self.pending:
            self.waiting.setdefault(record.fingerprint, []).append((record, checked))
        else:
            self._enqueue(record, checked)
        return recorded + self._step(wait=False)

    def drain(self) -> Iterator[CandidateRecord]:
        """Every candidate still queued or running, as it is recorded."""
        while self.pending:
            yield from self._step(wait=True)

    def _enqueue(self, record: CandidateRecord, checked: CheckedCode | None) -> None:
        self.pending.add(record.fingerprint)
        self.backlog.append((record, checked))

    def _step(self, *, wait: bool) -> list[CandidateRecord]:
        self._dispatch()
        recorded = []
        for finished in self.executor.collect(wait=wait):
            fingerprint = finished.job.record.fingerprint
            self.pending.discard(fingerprint)
            recorded.append(self.recorder.add(finished.record))
            recorded += self._release(fingerprint)
        self._dispatch()  # before the driver goes back to screening, so no worker sits idle
        return recorded

    def _dispatch(self) -> None:
        # The bar is read now, so a candidate is compared with everything recorded before it starts.
        while self.backlog and self.executor.free():
            record, checked = self.backlog.popleft()
            self.executor.submit(CascadeJob(record, checked, self.recorder.bar))

    def _release(self, fingerprint: str) -> list[CandidateRecord]:
        waiting = self.waiting.pop(fingerprint, [])
        seen = self.archive.by_fingerprint(fingerprint)
        if seen is None and waiting:  # the evaluation failed: the next candidate with this function gets its own
            self._enqueue(*waiting.pop(0))
            if waiting:
                self.waiting[fingerprint] = waiting
            return []
        return [self.recorder.add(record.reusing(seen)) for record, _ in waiting]
