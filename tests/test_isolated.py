"""selfdev.isolated: a stage in its own process, its log, result and errors back in the caller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfdev.errors import UserError
from selfdev.isolated import StageDied, run_isolated


def stage_ok(n: int, *, log) -> dict:
    log(f"working on {n}")
    return {"pid": os.getpid(), "square": n * n}


def stage_user_error(*, log) -> None:
    log("about to fail")
    raise UserError("bad config: no experts")


def stage_dies(*, log) -> None:
    os._exit(3)


def stage_sleeps(*, log) -> None:
    log(f"stage pid {os.getpid()}")
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its parent (init here) has not reaped it yet


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_stage_ends_when_its_caller_is_killed():
    # The caller is killed outright (no finally runs in it); its stage must not go on as an orphan.
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); from test_isolated import stage_sleeps; "
        "from selfdev.isolated import run_isolated; run_isolated(stage_sleeps, log=lambda l: print(l, flush=True))"
    )
    caller = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent)], stdout=subprocess.PIPE, text=True)
    try:
        line = caller.stdout.readline()
        assert line.startswith("stage pid "), line
        stage = int(line.split()[-1])
        assert _alive(stage)
    finally:
        caller.send_signal(signal.SIGKILL)
        caller.wait()
    deadline = time.monotonic() + 15
    while _alive(stage) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(stage), "the stage outlived its caller"


def test_runs_in_another_process_and_logs_through_the_callers_log():
    lines = []
    result = run_isolated(stage_ok, 7, log=lambda line: lines.append(line))  # a lambda: never pickled
    assert result["square"] == 49 and result["pid"] != os.getpid()
    assert lines == ["working on 7"]


def test_an_error_in_the_stage_is_raised_here_with_its_type():
    lines = []
    with pytest.raises(UserError, match="bad config: no experts"):
        run_isolated(stage_user_error, log=lines.append)
    assert lines == ["about to fail"]


def test_a_stage_that_dies_says_so():
    with pytest.raises(StageDied, match="stage_dies ended without a result \\(exit code 3\\)"):
        run_isolated(stage_dies, log=print)
