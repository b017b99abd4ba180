"""SandboxWorker: the caller's handle on a long-lived, restartable sandbox process.

Task vectors are copied once into memfd-backed shared memory and mapped
read-only by the worker; later requests over the same tensor objects reuse
that copy (matched by identity and version counter). Results come back the
same way, through a shared output buffer, so no tensor is ever pickled.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from sandbox import protocol, shm
from sandbox.diagnosis import Diagnosis, Status
from sandbox.limits import SandboxLimits
from sandbox.policy import compile_candidate_cached

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


def tensor_seed(seed: int, name: str) -> int:
    """Seed of the generator merge_model hands the candidate for tensor `name`.

    Derived from the name, not the position, so a tensor gets the same
    random numbers whatever subset or order of tensors is merged.
    """
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class _Process:
    """One worker process, its socket, and the task-vector sets it has mapped."""

    def __init__(self, limits: SandboxLimits, threads: int) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log = tempfile.TemporaryFile()
        env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
        # Fewer malloc arenas keep the worker's virtual size, which the
        # address-space limit is measured against, close to what it uses. A
        # fixed hash seed makes set iteration order, and so results of
        # candidates that iterate sets, the same in every worker.
        env.update(MALLOC_ARENA_MAX="2", OMP_NUM_THREADS=str(threads), PYTHONHASHSEED="0")
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
            _close_all(fds)
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


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


@dataclass
class _Staged:
    """Task vectors copied into one memfd, and the caller tensors they were copied from."""

    id: int
    fd: int
    nbytes: int
    names: tuple[str, ...]
    entries: list[list[shm.Slot]]
    # The caller's tensors a cached (not pinned) set was copied from, to recognise them again.
    sources: list[tuple[weakref.ref[torch.Tensor], int]] = field(default_factory=list, repr=False)

    def matches(self, groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> bool:
        if tuple(name for name, _ in groups) != self.names:
            return False
        flat = [t for _, tensors in groups for t in tensors]
        if len(flat) != len(self.sources):
            return False
        return all(ref() is t and t._version == version for t, (ref, version) in zip(flat, self.sources))


class TaskVectorSet:
    """Task vectors staged once in shared memory by SandboxWorker.load_task_vectors.

    Pass it to merge_model instead of the mapping; the caller's own tensors
    can then be freed. The shared memory is released by close() or when the
    set is garbage collected.
    """

    def __init__(self, staged: _Staged, owner: _State) -> None:
        self.names: tuple[str, ...] = staged.names
        self.nbytes = staged.nbytes
        self._staged = staged
        self._owner = owner
        self._finalizer = weakref.finalize(self, owner.unpinned.append, staged.id)

    def close(self) -> None:
        self._finalizer()

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"TaskVectorSet({len(self.names)} tensors, {self.nbytes / 2**20:.1f} MiB)"


class _OutputPool:
    """Output memfds whose returned tensors have all been freed, kept for the next candidate.

    Reusing one keeps its pages allocated, so the worker writes results into
    memory that is already there instead of faulting in fresh zeroed pages
    for every candidate.
    """

    def __init__(self) -> None:
        # give() runs from weakref finalizers, at any allocation in any thread;
        # a deque append needs no lock, so it can never deadlock.
        self.returned: deque[tuple[int, int, int]] = deque()
        self.closed = False

    def give(self, buffer_id: int, fd: int, nbytes: int) -> None:
        if self.closed:
            _close_all([fd])
        else:
            self.returned.append((buffer_id, fd, nbytes))

    def take(self, nbytes: int, new_id: int) -> tuple[int, int, list[int]]:
        """(id, fd) of a returned buffer of exactly `nbytes`, else of a new one with `new_id`;
        plus the ids of other returned buffers, which are freed here."""
        found, freed = None, []
        while self.returned:
            buffer_id, fd, size = self.returned.popleft()
            if found is None and size == nbytes:
                found = (buffer_id, fd)
            else:
                _close_all([fd])
                freed.append(buffer_id)
        if found is None:
            found = (new_id, shm.create(nbytes, "sandbox-merged"))
        return found[0], found[1], freed

    def close(self) -> None:
        self.closed = True
        while self.returned:
            _close_all([self.returned.popleft()[1]])


class _State:
    """Everything the finalizer must release; it holds no reference to the SandboxWorker."""

    def __init__(self) -> None:
        self.process: _Process | None = None
        self.spare: _Process | None = None
        # One LRU per entry point, so one-off merge_tensors calls (mergekit's
        # streaming path) never evict the whole-model set candidates share.
        self.staged: dict[str, OrderedDict[int, _Staged]] = {"model": OrderedDict(), "tensors": OrderedDict()}
        # Sets staged by load_task_vectors stay until their TaskVectorSet goes.
        self.pinned: dict[int, _Staged] = {}
        self.unpinned: deque[int] = deque()  # appended by finalizers, drained under the lock
        self.to_drop: list[int] = []
        self.outputs = _OutputPool()
        self.closed = False

    def drain_unpinned(self) -> None:
        while self.unpinned:
            staged = self.pinned.pop(self.unpinned.popleft(), None)
            if staged is not None:
                _close_all([staged.fd])
                self.to_drop.append(staged.id)

    def close(self) -> None:
        self.closed = True
        # The worker keeps nothing worth a graceful exit: its memory is shared
        # memory the caller owns, or scratch.
        for process in (self.process, self.spare):
            if process is not None:
                process.kill()
        self.process = self.spare = None
        for cache in (*self.staged.values(), self.pinned):
            _close_all([staged.fd for staged in cache.values()])
            cache.clear()
        self.outputs.close()


TensorSpec = tuple[tuple[int, ...], torch.dtype]


def _specs(groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> list[tuple[str, list[TensorSpec]]]:
    return [(name, [(tuple(t.shape), t.dtype) for t in tensors]) for name, tensors in groups]


def _check_specs(name: str, group: Sequence[TensorSpec]) -> None:
    if not group:
        raise ValueError(f"{name}: no task vectors")
    for shape, dtype in group:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"{name}: task vectors must be floating point, got {dtype}")
        if (shape, dtype) != tuple(group[0]):
            raise ValueError(f"{name}: task vectors differ in shape or dtype")


def _check_groups(groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> None:
    for name, tensors in groups:
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}: task vectors must be tensors, got {type(t).__name__}")
            if t.device.type != "cpu" or t.layout != torch.strided:
                raise ValueError(f"{name}: task vectors must be dense CPU tensors")
    for name, group in _specs(groups):
        _check_specs(name, group)


class SandboxWorker:
    """A long-lived sandbox process that runs candidate merge functions.

    Use as a context manager, or call close(). A timeout, crash or limit hit
    in one candidate replaces the process and never reaches the caller.
    Calls from several threads serialize on an internal lock.
    """

    def __init__(self, limits: SandboxLimits = SandboxLimits()) -> None:
        self.limits = limits
        self._threads = limits.torch_threads or torch.get_num_threads()
        self._lock = threading.Lock()
        self._state = _State()
        self._next_set = 0
        self._finalizer = weakref.finalize(self, self._state.close)
        self._state.process = _Process(limits, self._threads)

    # ------------------------------------------------------------------ #
    # public API

    def probe(self, code: str, seed: int = 0) -> Diagnosis:
        """Static gate, then run the candidate on small seeded probe tensors; OK carries a fingerprint.

        The probe tensors (SandboxLimits.probe_shapes, probe_k of each) and the
        candidate's generator both derive from `seed`, so fingerprints compare
        across candidates probed with the same seed and limits.
        """
        static = compile_candidate_cached(code, self.limits.max_code_chars)[1]
        if not static.ok:
            return static
        with self._lock:
            self._process()  # start-up is not the candidate's time
            start = time.monotonic() - static.seconds
            reply = self._exchange(
                {"op": "probe", "code": code, "seed": int(seed)},
                total_s=self.limits.wall_seconds_per_probe,
                step_s=self.limits.wall_seconds_per_probe,
                what=lambda done, whole: f"exceeded the probe's wall-clock limit of {self.limits.wall_seconds_per_probe:g}s",
            )
            return replace(reply, seconds=time.monotonic() - start)

    def merge_tensors(
        self, code: str, task_vectors: Sequence[torch.Tensor], seed: int = 0
    ) -> tuple[torch.Tensor | None, Diagnosis]:
        """merge(task_vectors) for one parameter; the candidate's generator is seeded with `seed`."""
        outputs, diagnosis = self._merge(code, [("task_vectors", list(task_vectors))], [int(seed)], name_tensors=False)
        return (outputs["task_vectors"] if outputs is not None else None), diagnosis

    def merge_model(
        self, code: str, task_vectors: Mapping[str, Sequence[torch.Tensor]] | TaskVectorSet, seed: int = 0
    ) -> tuple[dict[str, torch.Tensor] | None, Diagnosis]:
        """merge() over every named parameter under one whole-model wall limit.

        Fails as a whole on the first bad tensor, whose name starts the reason.
        Tensor `name` gets a generator seeded with tensor_seed(seed, name).
        Passing the same tensor objects again reuses the staged shared-memory
        copy; a TaskVectorSet from load_task_vectors is always reused.
        """
        if isinstance(task_vectors, TaskVectorSet):
            if task_vectors._owner is not self._state:
                raise ValueError("this TaskVectorSet was loaded by another SandboxWorker")
            if task_vectors._staged.id not in self._state.pinned:
                raise ValueError("this TaskVectorSet was closed")
            seeds = [tensor_seed(int(seed), name) for name in task_vectors.names]
            return self._merge(code, task_vectors._staged, seeds, name_tensors=True)
        groups = [(str(name), list(tensors)) for name, tensors in task_vectors.items()]
        seeds = [tensor_seed(int(seed), name) for name, _ in groups]
        return self._merge(code, groups, seeds, name_tensors=True)

    def load_task_vectors(self, task_vectors: Mapping[str, Sequence[torch.Tensor]]) -> TaskVectorSet:
        """Stage task vectors in shared memory once, for many merge_model calls.

        merge_model also stages and caches a mapping by itself, but only while
        the caller keeps the very same tensors alive; with a TaskVectorSet the
        caller may drop them and hold only the shared copy.
        """
        groups = [(str(name), list(tensors)) for name, tensors in task_vectors.items()]
        _check_groups(groups)
        return self.stream_task_vectors(_specs(groups), iter(groups))

    def stream_task_vectors(
        self,
        specs: Sequence[tuple[str, Sequence[TensorSpec]]],
        task_vectors: Iterable[tuple[str, Sequence[torch.Tensor]]],
    ) -> TaskVectorSet:
        """Stage task vectors that are produced one parameter at a time (read from disk, say).

        `specs` names every parameter with the (shape, dtype) of each of its task
        vectors, up front, so the shared memory is laid out before the first
        tensor arrives; `task_vectors` must then yield exactly that, in that
        order. The caller never holds more than the one parameter it yields,
        instead of a private copy of everything next to the shared one.
        """
        specs = [(str(name), [(tuple(shape), dtype) for shape, dtype in group]) for name, group in specs]
        for name, group in specs:
            _check_specs(name, group)
        with self._lock:
            self._state.drain_unpinned()
            staged = self._copy_to_shared(specs, task_vectors)
            self._state.pinned[staged.id] = staged
        return TaskVectorSet(staged, self._state)

    def close(self) -> None:
        """Stop the worker and release the shared memory; idempotent."""
        with self._lock:
            self._finalizer()

    def __enter__(self) -> SandboxWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ #
    # internals

    def _process(self) -> _Process:
        if self._state.closed:
            raise RuntimeError("SandboxWorker is closed")
        if self._state.process is None or self._state.process.popen.poll() is not None:
            # Died between requests (killed from outside): not the next candidate's fault.
            self._replace_process()
        process = self._state.process
        assert process is not None
        process.wait_ready(self.limits.startup_seconds)
        if self.limits.spare_worker and self._state.spare is None:
            # Started only once the active worker is up, so the two do not
            # compete for the CPU while importing torch.
            self._state.spare = _Process(self.limits, self._threads)
        return process

    def _replace_process(self) -> None:
        """Kill the current worker; the warm spare, if any, takes over (the next spare starts once it is up)."""
        state = self._state
        if state.process is not None:
            state.process.kill()
        spare, state.spare = state.spare, None
        if spare is not None and spare.popen.poll() is not None:
            spare.kill()
            spare = None
        state.process = spare if spare is not None else _Process(self.limits, self._threads)

    def _exchange(
        self,
        message: dict[str, Any],
        *,
        total_s: float,
        step_s: float,
        what: Callable[[int, bool], str],
        staged: _Staged | None = None,
        output: tuple[int, int] | None = None,
    ) -> Diagnosis:
        """Send one request, wait for its result under the wall limits, survive anything.

        Shared buffers (staged task vectors, output buffers) travel as
        descriptors only the first time a worker process sees them; it keeps
        them mapped until a later request lists them under "drop".
        """
        process = self._process()
        message["drop"] = [i for i in self._state.to_drop if i in process.sets_sent]
        process.sets_sent.difference_update(self._state.to_drop)
        self._state.to_drop.clear()
        fds: list[int] = []
        if staged is not None and staged.id not in process.sets_sent:
            fds.append(staged.fd)
            message["set"]["entries"] = [[s.to_json() for s in entry] for entry in staged.entries]
        if output is not None and output[0] not in process.sets_sent:
            fds.append(output[1])
            message["out"]["fd"] = True
        try:
            protocol.send(process.sock, message, fds)
        except OSError:
            status, reason = process.death()
            self._replace_process()
            return Diagnosis(status, reason)
        for shared in (staged.id if staged else None, output[0] if output else None):
            if shared is not None:
                process.sets_sent.add(shared)
        grace = self.limits.kill_grace_seconds
        sent = time.monotonic()
        total_deadline = sent + total_s + grace
        done, progressed = -1, sent
        while True:
            deadline = min(total_deadline, progressed + step_s + grace)
            if progressed == sent and time.monotonic() >= deadline:
                deadline = time.monotonic() + 0.1  # not picked up yet: poll the board until it is
            try:
                reply, reply_fds = protocol.recv(process.sock, deadline)
            except TimeoutError:
                posted, when = process.board.read()
                now = time.monotonic()
                if when > progressed:
                    done, progressed = posted, when
                    if now < total_deadline:
                        continue
                elif when <= sent and now < sent + self.limits.startup_seconds:
                    # Not picked up yet (a saturated machine): no candidate code has run, so no limit applies.
                    continue
                self._replace_process()
                return Diagnosis(Status.TIMEOUT, what(done, time.monotonic() >= total_deadline))
            except (EOFError, ConnectionError, protocol.ProtocolError):
                status, reason = process.death()
                self._replace_process()
                return Diagnosis(status, reason)
            _close_all(reply_fds)
            try:
                return Diagnosis.from_dict(reply["diagnosis"])
            except (KeyError, TypeError, ValueError):
                self._replace_process()
                return Diagnosis(Status.RUNTIME, "worker sent a malformed reply")

    def _stage(self, groups: Sequence[tuple[str, Sequence[torch.Tensor]]], kind: str) -> _Staged:
        cache = self._state.staged[kind]
        for staged in cache.values():
            if staged.matches(groups):
                cache.move_to_end(staged.id)
                return staged
        staged = self._copy_to_shared(_specs(groups), groups)
        staged.sources = [(weakref.ref(t), t._version) for _, tensors in groups for t in tensors]
        cache[staged.id] = staged
        while len(cache) > self.limits.task_vector_cache:
            _, evicted = cache.popitem(last=False)
            _close_all([evicted.fd])
            self._state.to_drop.append(evicted.id)
        return staged

    def _copy_to_shared(
        self,
        specs: Sequence[tuple[str, Sequence[TensorSpec]]],
        groups: Iterable[tuple[str, Sequence[torch.Tensor]]],
    ) -> _Staged:
        """One memfd laid out by `specs`, filled from `groups` one parameter at a time."""
        slots, nbytes = shm.plan([spec for _, group in specs for spec in group])
        entries, position = [], 0
        for _, group in specs:
            entries.append(slots[position : position + len(group)])
            position += len(group)
        fd = shm.create(nbytes, "sandbox-task-vectors")
        try:
            buffer = shm.map_fd(fd, nbytes, writable=True)
            base = shm.byte_tensor(buffer)
            arriving = iter(groups)
            with torch.no_grad():
                for (want, _), entry in zip(specs, entries):
                    name, tensors = next(arriving, (None, ()))
                    if name != want or len(tensors) != len(entry):
                        raise ValueError(f"expected {len(entry)} task vectors of {want!r}, got {len(tensors)} of {name!r}")
                    for tensor, slot in zip(tensors, entry):
                        if tuple(tensor.shape) != slot.shape or tensor.dtype != slot.torch_dtype:
                            got = f"{tuple(tensor.shape)} {tensor.dtype}"
                            raise ValueError(f"{name}: a task vector is {got}, the specs said {slot.shape} {slot.dtype}")
                        shm.view(base, slot).copy_(tensor)
                if next(arriving, None) is not None:
                    raise ValueError(f"more task vectors arrived than the {len(specs)} parameters in the specs")
            del base
            buffer.close()
        except BaseException:
            os.close(fd)
            raise
        staged = _Staged(id=self._next_set, fd=fd, nbytes=nbytes, names=tuple(name for name, _ in specs), entries=entries)
        self._next_set += 1
        return staged

    def _merge(
        self,
        code: str,
        inputs: list[tuple[str, list[torch.Tensor]]] | _Staged,
        seeds: list[int],
        *,
        name_tensors: bool,
    ) -> tuple[dict[str, torch.Tensor] | None, Diagnosis]:
        static = compile_candidate_cached(code, self.limits.max_code_chars)[1]
        if not static.ok:
            return None, static
        if isinstance(inputs, _Staged):
            names = list(inputs.names)
            out_specs = [(entry[0].shape, entry[0].torch_dtype) for entry in inputs.entries]
        else:
            _check_groups(inputs)
            names = [name for name, _ in inputs]
            out_specs = [(tuple(tensors[0].shape), tensors[0].dtype) for _, tensors in inputs]
        if not names:
            return {}, static
        out_slots, out_nbytes = shm.plan(out_specs)
        limits = self.limits

        def what(done: int, whole: bool) -> str:
            where = "<module>" if done < 0 else names[min(done, len(names) - 1)]
            if whole:
                reason = f"exceeded the whole-model wall-clock limit of {limits.wall_seconds_per_model:g}s"
            else:
                reason = f"exceeded the wall-clock limit of {limits.wall_seconds_per_call:g}s"
            return f"{where}: {reason}" if name_tensors else reason

        with self._lock:
            self._process()  # start-up is not the candidate's time
            start = time.monotonic() - static.seconds
            self._state.drain_unpinned()
            if isinstance(inputs, _Staged):
                if inputs.id not in self._state.pinned:
                    raise ValueError("this TaskVectorSet was closed")
                staged = inputs
            else:
                staged = self._stage(inputs, "model" if name_tensors else "tensors")
            out_id, out_fd, freed = self._state.outputs.take(out_nbytes, self._next_set)
            self._next_set += 1
            self._state.to_drop.extend(freed)
            try:
                message = {
                    "op": "merge",
                    "code": code,
                    "names": names,
                    "seeds": seeds,
                    "name_tensors": name_tensors,
                    "set": {"id": staged.id, "nbytes": staged.nbytes},
                    "out": {"id": out_id, "nbytes": out_nbytes, "slots": [s.to_json() for s in out_slots]},
                }
                diagnosis = self._exchange(
                    message,
                    total_s=limits.wall_seconds_per_model,
                    step_s=limits.wall_seconds_per_call,
                    what=what,
                    staged=staged,
                    output=(out_id, out_fd),
                )
                if diagnosis.ok:
                    out_buffer = shm.map_fd(out_fd, out_nbytes, writable=True)
            except BaseException:
                self._state.outputs.give(out_id, out_fd, out_nbytes)
                raise
        diagnosis = replace(diagnosis, seconds=time.monotonic() - start)
        if not diagnosis.ok:
            self._state.outputs.give(out_id, out_fd, out_nbytes)
            return None, diagnosis
        # The buffer goes back to the pool once every returned tensor is gone.
        weakref.finalize(out_buffer, self._state.outputs.give, out_id, out_fd, out_nbytes)
        base = shm.byte_tensor(out_buffer)
        return {name: shm.view(base, slot) for name, slot in zip(names, out_slots)}, diagnosis
