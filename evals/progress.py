"""Progress of a long stage that a person can follow anywhere: a rich bar in a terminal, timestamped lines in a log.

`Progress` takes the calls of `rich.progress.Progress` this project makes
(`add_task`, `advance`, `update`, `start`/`stop` or `with`). Where stderr is a
terminal it draws rich's bar there. Where output goes to a file or a pipe it
writes instead, per task, lines like

    [12:03:41] gsm8k (transformers): 12/96 (12%) 0.8/s, ETA 1m50s

at most one per `interval` seconds, and at least one (a background thread
writes it when nothing finished meanwhile), plus a last line when the task
ends. With stderr a terminal and stdout redirected (`make run > log`), the bar
is drawn and the lines go to stdout, so the log has them too.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

INTERVAL_S = 20.0  # between two lines of one task; with the heartbeat's slack, a line at least every 25 s


def stamp(line: str) -> str:
    """`line` after the wall-clock time, as every log line of a run starts."""
    return f"[{time.strftime('%H:%M:%S')}] {line}"


def duration(seconds: float) -> str:
    """45s, 1m50s, 2h05m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def rate(per_second: float) -> str:
    """0.8/s, or per minute or hour when slower (a debate row can take minutes)."""
    if per_second >= 0.1:
        return f"{per_second:.1f}/s"
    if per_second * 60 >= 0.1:
        return f"{per_second * 60:.1f}/min"
    return f"{per_second * 3600:.1f}/h"


def figures(done: float, total: float | None, new: float, elapsed: float, *, ended: bool = False) -> str:
    """`12/96 (12%) 0.8/s, ETA 1m50s`: done of total, the rate of the `new` ones done in `elapsed` s, time left.

    Without a finished item yet there is no rate, so the line says how long it has run instead; a task that
    `ended` says how long it took (or after how long it stopped short of its total).
    """
    text = f"{done:g}/{total:g} ({done / total:.0%})" if total else f"{done:g}"
    speed = f" {rate(new / elapsed)}" if new > 0 and elapsed > 0 else ""
    # A step with nothing to count (`working`) says only how long it has run.
    lead = "" if total is None and not done else f"{text}{speed}, "
    if ended:
        return f"{lead}{'took' if not total or done >= total else 'stopped after'} {duration(elapsed)}"
    if not speed or not total:
        return f"{lead}running {duration(elapsed)}"
    return f"{text}{speed}, ETA {duration(max(0.0, total - done) / (new / elapsed))}"


def _streams() -> tuple[bool, TextIO | None]:
    """(draw a bar on stderr, where lines go): a bar in a terminal, lines wherever output is kept."""
    from rich.console import Console

    if not Console(stderr=True).is_terminal:
        return False, sys.stderr
    return True, (None if Console().is_terminal else sys.stdout)


def note(line: str) -> None:
    """One timestamped line for the person watching: stderr, and stdout too when only stdout is kept."""
    bar, stream = _streams()
    for out in {sys.stderr, stream} - {None}:
        print(stamp(line), file=out, flush=True)


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float
    started_at: float  # clock
    started_with: float  # completed before this run (a resumed stage): not counted in the rate
    fields: dict[str, Any] = field(default_factory=dict)
    last_line: float = 0.0
    ended: bool = False


class Progress:
    """rich's Progress (add_task / advance / update / start / stop) that also reports to logs.

    `status=True` adds a column (and a line suffix) for a task's `status` field.
    `bar` and `stream` default to what the process's stderr and stdout are;
    tests set them, and `clock` (monotonic seconds), to check the lines.
    """

    def __init__(
        self,
        *,
        status: bool = False,
        disable: bool = False,
        interval: float = INTERVAL_S,
        bar: bool | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        auto_bar, auto_stream = _streams() if bar is None and stream is None else (bool(bar), stream)
        self.interval, self.clock = interval, clock
        self.stream = None if disable else auto_stream
        self.bar = None if disable or not auto_bar else _rich_progress(status)
        self.status = status
        self._tasks: dict[int, _Task] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # -- rich's interface ---------------------------------------------------------------------------------

    def add_task(self, description: str, total: float | None = 100, completed: float = 0, **fields: Any) -> int:
        with self._lock:
            now = self.clock()
            task_id = self.bar.add_task(description, total=total, completed=completed, **fields) if self.bar else len(self._tasks)
            self._tasks[task_id] = _Task(description, total, completed, now, completed, dict(fields), last_line=now)
            return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        advance: float | None = None,
        total: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if total is not None:
                task.total = total
            if description is not None:
                task.description = description
            if completed is not None:
                task.completed = completed
            if advance:
                task.completed += advance
            task.fields.update(fields)
            if self.bar:
                self.bar.update(task_id, completed=task.completed, total=task.total, description=task.description, **fields)
            if task.total is not None and task.completed >= task.total:
                self._end(task)
            else:
                self._line_if_due(task)

    def start(self) -> None:
        if self.bar:
            self.bar.start()
        if self.stream is not None and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
            self._heartbeat.start()

    def stop(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        with self._lock:
            for task in self._tasks.values():
                self._end(task)
        if self.bar:
            self.bar.stop()

    def __enter__(self) -> "Progress":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lines ----------------------------------------------------------------------------------------------

    def _beat(self) -> None:
        # Wakes often enough that a due line is at most a quarter interval late, even when nothing advances.
        while not self._stop.wait(min(self.interval / 4, 5.0)):
            with self._lock:
                for task in self._tasks.values():
                    self._line_if_due(task)

    def _line_if_due(self, task: _Task) -> None:
        now = self.clock()
        if not task.ended and now - task.last_line >= self.interval:
            self._line(task, now, ended=False)

    def _end(self, task: _Task) -> None:
        if not task.ended:
            task.ended = True
            self._line(task, self.clock(), ended=True)

    def _line(self, task: _Task, now: float, *, ended: bool) -> None:
        task.last_line = now
        if self.stream is None:
            return
        text = figures(task.completed, task.total, task.completed - task.started_with, now - task.started_at, ended=ended)
        status = task.fields.get("status") if self.status else None
        print(stamp(f"{task.description}: {text}" + (f" | {status}" if status else "")), file=self.stream, flush=True)


def _rich_progress(status: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    if status:
        columns.append(TextColumn("{task.fields[status]}"))
    # stderr, so a command's stdout stays for its results.
    return RichProgress(*columns, console=Console(stderr=True))


@contextlib.contextmanager
def progress_bar(label: str, total: int, show: bool = True, **options: Any) -> Iterator[Callable[[int], None]]:
    """One task; yields `advance(n)`. It ends at 100% even if fewer steps were reported (not on an error)."""
    with Progress(disable=not show, **options) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)
        progress.update(task, completed=total)


@contextlib.contextmanager
def working(label: str, show: bool = True, **options: Any) -> Iterator[None]:
    """A step with no count to report (loading, converting, saving a model): in a log, `label: running 40s`
    lines while it runs and its time when it ends, so a silent library call never leaves a log quiet."""
    with Progress(disable=not show, **options) as progress:
        progress.add_task(label, total=None)
        yield  # leaving the block ends the task: its last line says how long the step took

