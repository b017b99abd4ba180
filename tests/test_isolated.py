"""selfdev.isolated: a stage in its own process, its log, result and errors back in the caller."""

from __future__ import annotations

import os

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
