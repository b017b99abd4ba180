"""SandboxWorker: the caller's handle on a long-lived, restartable sandbox process.

Task vectors are copied once into memfd-backed shared memory and mapped
read-only by the worker; later requests over the same tensor objects reuse
that copy (matched by identity and version counter). Results come back the
same way, through a shared output buffer, so no tensor is ever pickled.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

from sandbox import protocol, shm
from sandbox.diagnosis import Diagnosis, Status
from sandbox.limits import SandboxLimits
from sandbox.policy import CheckedCode, check_cached
from sandbox.process import SandboxError, WorkerProcess, close_all
from sandbox.staging import Staged, TaskVectorSet, TensorSpec, WorkerState, check_groups, check_specs, specs_of
from sandbox.staging import copy_to_shared

__all__ = ["SandboxError", "SandboxWorker", "TaskVectorSet", "tensor_seed"]


def tensor_seed(seed: int, name: str) -> int:
    """Seed of the generator merge_model hands the candidate for tensor `name`.

    Derived from the name, not the position, so a tensor gets the same
    random numbers whatever subset or order of tensors is merged.
    """
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


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
        self._state = WorkerState()
        self._next_set = 0
        self._finalizer = weakref.finalize(self, self._state.close)
        self._state.process = WorkerProcess(limits, self._threads)

    # ------------------------------------------------------------------ #
    # public API

    def probe(self, code: str | CheckedCode, seed: int = 0, *, task_vectors: TaskVectorSet | None = None) -> Diagnosis:
        """Static gate (unless `code` passed it already), then the candidate on seeded probe tensors; OK has a fingerprint.

        The probe tensors (SandboxLimits.probe_shapes, probe_k of each) and the
        candidate's generator both derive from `seed`, so fingerprints compare
        across candidates probed with the same seed and limits.

        With `task_vectors` (a TaskVectorSet loaded into this worker, usually
        a few real parameters picked by sandbox.choose_probe_tensors), the
        candidate also runs on each of its parameters, as merge_model would
        (generator seeded with tensor_seed(seed, name), wall_seconds_per_call
        each), and those outputs enter the fingerprint too: candidates then
        share a fingerprint only if they also merge these real tensors alike.
        Compare fingerprints only between probes given the same set.
        """
        checked = self._checked(code)
        static = checked.diagnosis
        if not checked.ok:
            return static
        limits = self.limits
        names: list[str] = []
        message: dict[str, Any] = {"op": "probe", "compiled": protocol.encode_bytes(checked.compiled), "seed": int(seed)}
        staged = None
        if task_vectors is not None:
            staged = self._pinned(task_vectors)
            names = list(task_vectors.names)
            message["seeds"] = [tensor_seed(int(seed), name) for name in names]
            message["names"] = names
            message["set"] = {"id": staged.id, "nbytes": staged.nbytes}

        def what(done: int, whole: bool) -> str:
            if done < 0 or not names:
                return f"exceeded the probe's wall-clock limit of {limits.wall_seconds_per_probe:g}s"
            return f"{names[min(done, len(names) - 1)]}: exceeded the wall-clock limit of {limits.wall_seconds_per_call:g}s"

        with self._lock:
            self._process()  # start-up is not the candidate's time
            start = time.monotonic() - static.seconds
            self._state.drain_unpinned()
            if staged is not None and staged.id not in self._state.pinned:
                raise ValueError("this TaskVectorSet was closed")
            reply = self._exchange(
                message,
                total_s=limits.wall_seconds_per_probe + len(names) * limits.wall_seconds_per_call,
                step_s=max(limits.wall_seconds_per_probe, limits.wall_seconds_per_call if names else 0.0),
                what=what,
                staged=staged,
            )
            return replace(reply, seconds=time.monotonic() - start)

    def merge_tensors(
        self, code: str | CheckedCode, task_vectors: Sequence[torch.Tensor], seed: int = 0
    ) -> tuple[torch.Tensor | None, Diagnosis]:
        """merge(task_vectors) for one parameter; the candidate's generator is seeded with `seed`."""
        outputs, diagnosis = self._merge(code, [("task_vectors", list(task_vectors))], [int(seed)], name_tensors=False)
        return (outputs["task_vectors"] if outputs is not None else None), diagnosis

    def merge_model(
        self, code: str | CheckedCode, task_vectors: Mapping[str, Sequence[torch.Tensor]] | TaskVectorSet, seed: int = 0
    ) -> tuple[dict[str, torch.Tensor] | None, Diagnosis]:
        """merge() over every named parameter under one whole-model wall limit.

        Fails as a whole on the first bad tensor, whose name starts the reason.
        Tensor `name` gets a generator seeded with tensor_seed(seed, name).
        Passing the same tensor objects again reuses the staged shared-memory
        copy; a TaskVectorSet from load_task_vectors is always reused.
        """
        if isinstance(task_vectors, TaskVectorSet):
            seeds = [tensor_seed(int(seed), name) for name in task_vectors.names]
            return self._merge(code, self._pinned(task_vectors), seeds, name_tensors=True)
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
        check_groups(groups)
        return self.stream_task_vectors(specs_of(groups), iter(groups))

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
            check_specs(name, group)
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

    def _pinned(self, task_vectors: TaskVectorSet) -> Staged:
        if task_vectors._owner is not self._state:
            raise ValueError("this TaskVectorSet was loaded by another SandboxWorker")
        if task_vectors._staged.id not in self._state.pinned:
            raise ValueError("this TaskVectorSet was closed")
        return task_vectors._staged

    def _process(self) -> WorkerProcess:
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
            self._state.spare = WorkerProcess(self.limits, self._threads)
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
        state.process = spare if spare is not None else WorkerProcess(self.limits, self._threads)

    def _exchange(
        self,
        message: dict[str, Any],
        *,
        total_s: float,
        step_s: float,
        what: Callable[[int, bool], str],
        staged: Staged | None = None,
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
        # Before the send, not after: a worker can pick the request up, run every small tensor and post its
        # progress before this thread runs again (a busy 2-core machine). With `sent` taken after the send, those
        # posts read as older than the request, the loop below took the worker for "not picked up yet" and
        # waited out the start-up allowance instead of killing a call stuck in C code.
        sent = time.monotonic()
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
            close_all(reply_fds)
            try:
                return Diagnosis.from_dict(reply["diagnosis"])
            except (KeyError, TypeError, ValueError):
                self._replace_process()
                return Diagnosis(Status.RUNTIME, "worker sent a malformed reply")

    def _stage(self, groups: Sequence[tuple[str, Sequence[torch.Tensor]]], kind: str) -> Staged:
        cache = self._state.staged[kind]
        for staged in cache.values():
            if staged.matches(groups):
                cache.move_to_end(staged.id)
                return staged
        staged = self._copy_to_shared(specs_of(groups), groups)
        staged.sources = [(weakref.ref(t), t._version) for _, tensors in groups for t in tensors]
        cache[staged.id] = staged
        while len(cache) > self.limits.task_vector_cache:
            _, evicted = cache.popitem(last=False)
            close_all([evicted.fd])
            self._state.to_drop.append(evicted.id)
        return staged

    def _copy_to_shared(
        self, specs: Sequence[tuple[str, Sequence[TensorSpec]]], groups: Iterable[tuple[str, Sequence[torch.Tensor]]]
    ) -> Staged:
        staged = copy_to_shared(specs, groups, self._next_set)
        self._next_set += 1
        return staged

    def _checked(self, code: str | CheckedCode) -> CheckedCode:
        """`code` after the static gate: run now for a string, taken as it is when checked under these limits."""
        if isinstance(code, CheckedCode) and code.max_chars == self.limits.max_code_chars:
            return code
        return check_cached(code if isinstance(code, str) else code.source, self.limits.max_code_chars)

    def _merge(
        self,
        code: str | CheckedCode,
        inputs: list[tuple[str, list[torch.Tensor]]] | Staged,
        seeds: list[int],
        *,
        name_tensors: bool,
    ) -> tuple[dict[str, torch.Tensor] | None, Diagnosis]:
        checked = self._checked(code)
        static = checked.diagnosis
        if not checked.ok:
            return None, static
        if isinstance(inputs, Staged):
            names = list(inputs.names)
            out_specs = [(entry[0].shape, entry[0].torch_dtype) for entry in inputs.entries]
        else:
            check_groups(inputs)
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
            if isinstance(inputs, Staged):
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
                    "compiled": protocol.encode_bytes(checked.compiled),
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
