"""Live progress of discovery: candidates done / running / failed, duplicates, best so far."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from evals.progress import Progress, progress_bar, stamp
from selfdev import scores
from selfdev.archive import Archive
from selfdev.stages import CandidateRecord


def timestamped(log: Callable[[str], None]) -> Callable[[str], None]:
    """`log` with the wall-clock time before each line, so a long run's log tells what each stage took."""
    return lambda line: log(stamp(line))


def _progress() -> Progress:
    """A bar in a terminal, throttled lines with rate and ETA in a log (evals.progress), with a status column."""
    return Progress(status=True)


class LoopProgress:
    """One iteration's evaluation bar; counts include candidates finished before a resume."""

    def __init__(self, iteration: int, total: int, archive: Archive) -> None:
        self.iteration = iteration
        done = archive.candidates(iteration)
        self.failed = sum(not c.executable for c in done)
        self.duplicates = sum(c.duplicate_of is not None for c in done)
        self.best = scores.best(archive.candidates(kind=None))
        self.bar = _progress()
        self.total = max(total, len(done))  # with repairs, a resumed iteration may have more rows than samples
        self.task = self.bar.add_task(f"iteration {iteration}", total=self.total, completed=len(done), status="")
        self._refresh(running=None)

    def __enter__(self) -> "LoopProgress":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def _refresh(self, running: int | None) -> None:
        best = "-" if self.best is None else self.best.dev.describe()
        now = f"running #{running} | " if running is not None else ""
        self.bar.update(self.task, status=f"{now}failed {self.failed} | dup {self.duplicates} | best dev {best}")

    def grow(self, more: int) -> None:
        """`more` candidates join the iteration (a repair round)."""
        self.total += more
        self.bar.update(self.task, total=self.total)

    def running(self, index: int) -> None:
        self._refresh(running=index)

    def finished(self, candidate: CandidateRecord) -> None:
        self.failed += not candidate.executable
        self.duplicates += candidate.duplicate_of is not None
        self.best = scores.best([candidate] + ([self.best] if self.best else []))
        self.bar.advance(self.task)
        self._refresh(running=None)

    @staticmethod
    @contextlib.contextmanager
    def simple(description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A plain bar for sampling and test evaluation; yields advance(n)."""
        with progress_bar(description, total) as advance:
            yield advance
