"""Hardening of a fresh worker process before it accepts candidates: stdio, thread pool, limits, privileges."""

from __future__ import annotations

import ctypes
import gc
import os
import pwd
import resource
import signal

import torch

from sandbox.limits import SandboxLimits
from sandbox.runtime import CallContext, CappedText
from sandbox.writes import WriteGuard

# Room for the few tasks torch may still start; fork bombs hit it at once.
_NPROC_MARGIN = 16
_STDIO_CAP_BYTES = 4 << 20
_PR_SET_NO_NEW_PRIVS = 38


def _tasks_of_user(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def harden(limits: SandboxLimits, threads: int) -> int:
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    stdio = os.memfd_create("sandbox-stdio", os.MFD_CLOEXEC)
    os.dup2(stdio, 1)
    os.dup2(stdio, 2)

    torch.set_num_threads(threads)
    # Start the intra-op thread pool now, before the task limit is set and
    # outside any candidate's address-space budget.
    (torch.ones(512, 512) @ torch.ones(512, 512)).sum()
    torch.ones(1 << 22).add_(1).sum()
    # Whatever the write guard imports on first use is imported now, as the worker's own.
    with WriteGuard(CallContext(0, (), CappedText(0))):
        (torch.ones(4) * 2).sum().item()
    # Everything alive now is the worker's own and stays: later collections
    # (one after every candidate, see LoadedCandidate.close) only walk what
    # candidates made.
    gc.collect()
    gc.freeze()

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (_STDIO_CAP_BYTES, _STDIO_CAP_BYTES))
    _drop_privileges()
    tasks = _tasks_of_user(os.getuid()) + _NPROC_MARGIN
    resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))
    return stdio


def _drop_privileges() -> None:
    """Give up root (containers often run as root) and any way back to it.

    Everything the worker needs is open by now: its socket, its stdio memfd,
    and task vectors arrive as descriptors. As an ordinary user the task
    limit (RLIMIT_NPROC) is also enforced, which root would bypass.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.geteuid() != 0:
        return
    try:
        nobody = pwd.getpwnam("nobody")
        uid, gid = nobody.pw_uid, nobody.pw_gid
    except KeyError:
        uid = gid = 65534
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
