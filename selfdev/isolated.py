"""Run a heavy stage in a fresh process, so all of its memory goes back to the system when it ends.

Measured on a fresh `make run`: after the experts' debate and finetuning and
the baselines' merges had run inside the discovery process, it carried about
3 GiB more through every later phase than a run that found both cached, and
the tree peaked at 13.9 GiB. (An evaluation backend alone is freed when
dropped, so what stays is whatever the stages leave with the allocators.)
A child process gives all of it back when it exits, whatever it was.

The child is spawned (a fork would copy the parent's CUDA or Ray state). Its
log lines come back through a pipe to the caller's `log`, which need not be
picklable; its return value and exceptions come back pickled, so a UserError
raised in the stage is still a UserError here.

The child ends with its caller: a caller killed outright (SIGTERM, SIGKILL, out of
memory) runs no `finally`, and a debate left running as an orphan went on using both
cores for minutes. The child holds the read end of a lifeline pipe whose only write
end the caller holds; when the caller is gone, the read sees end of file and the
child exits. (Not PR_SET_PDEATHSIG: it fires when the thread that started the child
exits, see sandbox/worker_process.py.)
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any, Callable, TypeVar

T = TypeVar("T")
Log = Callable[[str], None]
_JOIN_SECONDS = 30


class StageDied(RuntimeError):
    """The stage's process ended without a result (killed, out of memory, crashed in C)."""


def _exit_with_caller(lifeline: Connection) -> None:
    try:
        lifeline.recv()  # the caller never sends: this returns only by end of file
    except (EOFError, OSError):
        pass
    print("selfdev: the caller of this stage is gone; stopping it", file=sys.stderr, flush=True)
    os._exit(1)


def _stage_main(conn: Connection, lifeline: Connection, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    threading.Thread(target=_exit_with_caller, args=(lifeline,), daemon=True, name="lifeline").start()
    try:
        result = fn(*args, log=lambda line: conn.send(("log", line)), **kwargs)
        conn.send(("result", result))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the caller
        try:
            conn.send(("error", e))
        except OSError:
            pass  # the caller is gone (interrupted): nobody to tell
        except Exception:  # an exception that does not pickle still reports its text
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., T], /, *args: Any, log: Log, **kwargs: Any) -> T:
    """`fn(*args, log=..., **kwargs)` in a spawned process; its result, or its exception raised here.

    `fn` must be importable by name and its arguments picklable.
    """
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    lifeline, holder = context.Pipe(duplex=False)
    process = context.Process(
        target=_stage_main, args=(writer, lifeline, fn, args, kwargs), name=f"selfdev-{fn.__name__}"
    )
    process.start()
    writer.close()  # so that the child's exit shows here as end of file
    lifeline.close()  # the child's end; `holder` closes when this process ends, however it ends
    try:
        while True:
            try:
                kind, value = reader.recv()
            except EOFError:
                process.join(_JOIN_SECONDS)
                raise StageDied(f"{fn.__name__} ended without a result (exit code {process.exitcode})") from None
            if kind == "log":
                log(value)
            elif kind == "result":
                return value
            else:
                raise value
    finally:
        reader.close()
        process.join(_JOIN_SECONDS)
        if process.is_alive():  # interrupted here while the stage still runs
            process.terminate()
            process.join(_JOIN_SECONDS)
        holder.close()
