"""evals.progress: a bar in a terminal, throttled timestamped lines with done/total, rate and ETA in a log."""

from __future__ import annotations

import io
import re
import time

from evals.progress import Progress, duration, figures, progress_bar, working

LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (?P<label>[^:]+): (?P<figures>.*)$")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_figures_say_done_total_rate_and_time_left():
    assert figures(12, 96, 12, 15.0) == "12/96 (12%) 0.8/s, ETA 1m45s"
    assert figures(3, 96, 3, 600.0) == "3/96 (3%) 0.3/min, ETA 5h10m"
    assert figures(0, 96, 0, 30.0) == "0/96 (0%), running 30s"  # nothing finished yet: no rate to speak of
    assert figures(96, 96, 96, 120.0, ended=True) == "96/96 (100%) 0.8/s, took 2m00s"
    assert figures(40, 96, 40, 80.0, ended=True) == "40/96 (42%) 0.5/s, stopped after 1m20s"
    assert duration(3725) == "1h02m" and duration(59.6) == "1m00s"


def test_log_lines_are_throttled_and_end_with_a_final_line():
    clock, out = FakeClock(), io.StringIO()
    with Progress(bar=False, stream=out, clock=clock, interval=20) as progress:
        task = progress.add_task("gsm8k (transformers)", total=96)
        for _ in range(48):  # one finished row every 2.5 s: 120 s in all
            clock.now += 2.5
            progress.advance(task)
        assert len(lines(out)) == 6  # one per 20 s, not one per row
        for _ in range(48):
            clock.now += 2.5
            progress.advance(task)
    got = [LINE.match(line) for line in lines(out)]
    assert all(got) and {m["label"] for m in got} == {"gsm8k (transformers)"}
    assert got[0]["figures"] == "8/96 (8%) 0.4/s, ETA 3m40s"
    assert got[-1]["figures"] == "96/96 (100%) 0.4/s, took 4m00s"
    assert len(got) == 12  # throttled lines at 20, 40, ..., 220 s, then the final one at 240 s (never twice)


def test_a_resumed_task_counts_only_new_work_in_its_rate():
    clock, out = FakeClock(), io.StringIO()
    with Progress(bar=False, stream=out, clock=clock, interval=20, status=True) as progress:
        task = progress.add_task("iteration 1", total=12, completed=8, status="")
        clock.now += 30
        progress.update(task, advance=1, status="best dev 0.300")
    assert lines(out)[0].endswith("iteration 1: 9/12 (75%) 2.0/min, ETA 1m30s | best dev 0.300")
    assert lines(out)[-1].endswith("stopped after 30s | best dev 0.300")


def test_a_line_comes_even_when_nothing_finishes():
    out = io.StringIO()
    with Progress(bar=False, stream=out, interval=0.05) as progress:
        progress.add_task("seed debate round 0", total=96)
        time.sleep(0.3)
    assert any("0/96 (0%), running" in line for line in lines(out))


def test_terminal_bar_still_works_and_writes_no_lines():
    progress = Progress(bar=True, stream=None, status=True)
    assert progress.bar is not None
    with progress:
        task = progress.add_task("iteration 0", total=4, status="")
        progress.advance(task, 3)
        progress.update(task, status="dup 1")
    rich_task = progress.bar.tasks[0]
    assert rich_task.completed == 3 and rich_task.total == 4 and rich_task.fields["status"] == "dup 1"


def test_progress_bar_ends_at_its_total_and_quiet_means_silent(capsys):
    out = io.StringIO()
    with progress_bar("sampling iteration 0", 12, bar=False, stream=out) as advance:
        advance(5)  # the backend reported coarsely
    assert len(lines(out)) == 1 and "sampling iteration 0: 12/12 (100%)" in lines(out)[0]
    with progress_bar("quiet", 3, show=False) as advance:
        advance(3)
    assert capsys.readouterr().err == ""


def test_a_step_without_counts_still_reports_in_a_log():
    out = io.StringIO()
    with working("seed conversion", bar=False, stream=out, interval=0.2):
        time.sleep(0.7)  # the heartbeat thread writes while the block is busy
    got = [LINE.match(line) for line in lines(out)]
    assert all(got) and len(got) >= 3 and {m["label"] for m in got} == {"seed conversion"}
    assert all(re.fullmatch(r"running \S+", m["figures"]) for m in got[:-1])
    assert re.fullmatch(r"took \S+", got[-1]["figures"])
