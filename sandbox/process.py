"""One sandbox worker process as the caller sees it: start, handshake, kill, cause of death."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox import heap, protocol, shm
from sandbox.diagnosis import Status
from sandbox.limits import SandboxLimits

_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[2]); "
    "from sandbox.worker_process import main; main(int(sys.argv[1]))"
)
# The worker gets no tokens, proxies or credentials from the caller's environment.
_ENV_KEEP = ("PATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TZ")


_SKEW = (
    "sandbox protocol mismatch (this process speaks {caller}, the worker {worker}): the sandbox "
    "files changed on disk after this process imported them; restart it"
)


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (the worker does not start); never a candidate's fault."""


class WorkerProcess:
    """One worker process, its socket, and the task-vector sets it has mapped."""

    def __init__(self, limits: SandboxLimits, threads: int) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log = tempfile.TemporaryFile()
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        # Fewer malloc arenas keep the worker's virtual size, which the
        # address-space limit is measured against, close to what it uses. A
        # fixed hash seed makes set iteration order, and so results of
        # candidates that iterate sets, the same in every worker. Freed memory stays in the heap for the
        # next tensor's temporaries (sandbox.heap).
        env.update(MALLOC_ARENA_MAX="2", OMP_NUM_THREADS=str(threads), PYTHONHASHSEED="0", **heap.RETAIN_ENV)
        try:
            self.popen = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(child.fileno()), _PACKAGE_PARENT],
                pass_fds=(child.fileno(),),
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                env=env,
                cwd="/",
            )
        finally:
            child.close()
        self.sock = parent
        self.ready = False
        self.sets_sent: set[int] = set()
        board_fd = shm.create(shm.ProgressBoard.SIZE, "sandbox-progress")
        try:
            self.board = shm.ProgressBoard(board_fd, writable=False)
            hello = {"op": "hello", "protocol": protocol.PROTOCOL_VERSION, "limits": limits.to_dict(), "threads": threads}
            protocol.send(parent, hello, [board_fd])
        finally:
            os.close(board_fd)

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            message, fds = protocol.recv(self.sock, time.monotonic() + timeout)
            close_all(fds)
        except (TimeoutError, EOFError, ConnectionError, protocol.ProtocolError) as exc:
            self._terminate()
            log = self.log_tail()
            self.kill()
            raise SandboxError(
                f"sandbox worker did not start ({type(exc).__name__}, exit status {self.popen.returncode}): {log}"
            ) from None
        if message.get("event") != "ready":
            self.kill()
            raise SandboxError(f"sandbox worker sent {message!r} instead of ready")
        if message.get("protocol") != protocol.PROTOCOL_VERSION:
            self.kill()
            raise SandboxError(_SKEW.format(caller=protocol.PROTOCOL_VERSION, worker=message.get("protocol")))
        self.ready = True

    def log_tail(self, chars: int = 2000) -> str:
        try:
            self.log.seek(0)
            return self.log.read().decode("utf-8", "replace")[-chars:].strip()
        except (OSError, ValueError):
            return ""

    def _terminate(self) -> None:
        # Only while the process is unreaped: after wait() its pid (and so its
        # process group id) may already belong to someone else.
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.popen.wait()

    def kill(self) -> None:
        self._terminate()
        self.sock.close()
        self.board.close()
        self.log.close()

    def death(self) -> tuple[Status, str]:
        """Status and reason for a worker that went away mid-request."""
        try:
            code = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.popen.returncode
        if code is not None and code < 0:
            try:
                sig = signal.Signals(-code)
            except ValueError:
                return Status.RUNTIME, f"worker died from signal {-code}"
            if sig == signal.SIGXCPU:
                return Status.TIMEOUT, "exceeded the CPU-time limit"
            if sig == signal.SIGKILL:
                return Status.MEMORY, "worker was killed (SIGKILL), most likely out of memory"
            return Status.RUNTIME, f"worker crashed ({sig.name})"
        return Status.RUNTIME, f"worker exited with status {code}"


def close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


