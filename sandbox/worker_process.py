"""Entry point and request loop of the sandbox worker process.

Started by SandboxWorker as `python -I -c ...` in its own session (so its
whole process group can be killed), with a minimal environment, cwd `/`, and
one Unix socket to the caller. Everything a candidate runs happens here.
"""

from __future__ import annotations

import gc
import marshal
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from types import CodeType
from typing import Any

import torch

from sandbox import protocol, shm
from sandbox.diagnosis import Diagnosis, Status
from sandbox.execute import CandidateFailure, LoadedCandidate, Limiter, check_result, store_result
from sandbox.fingerprint import fingerprint, probe_inputs
from sandbox.harden import harden
from sandbox.limits import SandboxLimits
from sandbox.runtime import CappedText


def _compiled(message: dict[str, Any]) -> CodeType:
    """The module the caller's static gate compiled (sandbox.policy.CheckedCode); this process never compiles."""
    return marshal.loads(protocol.decode_bytes(message["compiled"]))


def _close_mapping(buffer: Any) -> None:
    try:
        buffer.close()
    except BufferError:
        # A tensor still points into it; the mapping goes with that tensor.
        pass


class _MappedSet:
    """A staged task-vector set, mapped read-only and kept across requests.

    Only the mapping and the slot layout are kept: every call gets tensor
    views made for it alone (views(i)), so nothing a candidate does to the
    tensor objects it was handed (resize, transpose, ...) reaches a later call.
    The data itself is read-only: a write that got past every guard would
    fault instead of changing what later candidates read.
    """

    def __init__(self, fd: int, nbytes: int, entries: list[list[shm.Slot]]) -> None:
        try:
            self.buffer = shm.map_fd(fd, nbytes, writable=False, populate=True)
        finally:
            os.close(fd)
        self.base = shm.byte_tensor(self.buffer)
        self.storage_ptr = self.base.untyped_storage().data_ptr()
        self.entries = entries

    def views(self, index: int) -> list[torch.Tensor]:
        return [shm.view(self.base, slot) for slot in self.entries[index]]

    def close(self) -> None:
        self.entries = []
        del self.base
        _close_mapping(self.buffer)


def _explain_timeout(failure: CandidateFailure, limits: SandboxLimits, wall_limit: str) -> CandidateFailure:
    """Name the limit that fired: the candidate only saw an interruption."""
    if failure.status is not Status.TIMEOUT:
        return failure
    if "CPU" in failure.reason:
        reason = f"exceeded the CPU-time limit of {limits.cpu_seconds_per_call:g}s per call"
    else:
        reason = f"exceeded {wall_limit}"
    return CandidateFailure(Status.TIMEOUT, reason, failure.line)


class WorkerServer:
    def __init__(self, sock: socket.socket, limits: SandboxLimits, stdio_fd: int, board: shm.ProgressBoard) -> None:
        self.sock = sock
        self.board = board
        self.limits = limits
        self.stdio_fd = stdio_fd
        self.limiter = Limiter(limits)
        self.sets: dict[int, _MappedSet] = {}
        # Output buffers come back to the same worker candidate after
        # candidate; keeping them mapped saves populating page tables each time.
        self.outputs: dict[int, Any] = {}

    # ------------------------------------------------------------------ #

    def serve(self) -> None:
        # Handlers pop the descriptors they take over; the rest are closed here.
        handlers: dict[str, Callable[[dict[str, Any], list[int], CappedText], dict[str, Any]]] = {
            "probe": self.probe,
            "merge": self.merge,
        }
        while True:
            try:
                message, fds = protocol.recv(self.sock)
            except (EOFError, ConnectionError):
                return
            self._progress(-1)  # picked up: from here on the caller's per-call clock runs
            op = message.get("op")
            for shared_id in message.get("drop", []):
                mapped = self.sets.pop(int(shared_id), None)
                if mapped is not None:
                    mapped.close()
                buffer = self.outputs.pop(int(shared_id), None)
                if buffer is not None:
                    _close_mapping(buffer)
            output = CappedText(self.limits.max_output_chars)
            try:
                handler = handlers.get(op)  # type: ignore[arg-type]
                if handler is None:
                    reply = Diagnosis(Status.RUNTIME, f"unknown sandbox request {op!r}").to_dict()
                else:
                    reply = handler(message, fds, output)
            except Exception as exc:
                reply = Diagnosis(Status.RUNTIME, f"sandbox internal error: {type(exc).__name__}: {exc}").to_dict()
                output.write(traceback.format_exc())
            finally:
                for fd in fds:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            reply["output"] = self._collect_output(output)
            if reply.get("status") == Status.MEMORY.value:
                # Whatever survived the failed allocation should not count
                # against the next candidate's address space.
                gc.collect()
            protocol.send(self.sock, {"event": "result", "diagnosis": reply})

    def _collect_output(self, output: CappedText) -> str:
        sys.stdout.flush()
        sys.stderr.flush()
        os.lseek(self.stdio_fd, 0, os.SEEK_SET)
        raw = os.read(self.stdio_fd, max(self.limits.max_output_chars, 1))
        os.ftruncate(self.stdio_fd, 0)
        os.lseek(self.stdio_fd, 0, os.SEEK_SET)
        if raw:
            output.write(raw.decode("utf-8", "replace"))
        return output.getvalue()

    def _progress(self, done: int) -> None:
        # Shared memory, not a message: waking the caller once per tensor
        # costs milliseconds each on a busy machine.
        self.board.post(done, time.monotonic())

    # ------------------------------------------------------------------ #

    def _mapped(self, message: dict[str, Any], fds: list[int]) -> _MappedSet | None:
        """The staged set a request names, mapped on first use (its descriptor rides along then)."""
        staged = message["set"]
        set_id = int(staged["id"])
        if set_id not in self.sets:
            if not fds:
                return None
            entries = [[shm.Slot.from_json(s) for s in entry] for entry in staged["entries"]]
            self.sets[set_id] = _MappedSet(fds.pop(0), int(staged["nbytes"]), entries)
        return self.sets[set_id]

    def probe(self, message: dict[str, Any], fds: list[int], output: CappedText) -> dict[str, Any]:
        """The candidate on the synthetic probe tensors, then on the real parameters of a staged set if one is named."""
        limits = self.limits
        seed = int(message.get("seed", 0))
        mapped = None
        if message.get("set") is not None:
            mapped = self._mapped(message, fds)
            if mapped is None:
                return Diagnosis(Status.RUNTIME, "sandbox internal error: task vectors were not sent").to_dict()
        real_seeds = [int(s) for s in message.get("seeds", [])]
        real_names = [str(n) for n in message.get("names", [])]
        deadline = time.monotonic() + limits.wall_seconds_per_probe
        candidate = LoadedCandidate(_compiled(message), self.limiter, output)

        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CandidateFailure(Status.TIMEOUT, "exceeded the wall-clock limit")
            return left

        outputs, all_zero, protected, phase, name = [], True, frozenset(), "probe", ""
        threads = torch.get_num_threads()
        try:
            candidate.load(remaining())
            # Probe tensors are small: one thread runs them as fast as the pool
            # on an idle machine and ten times faster on a saturated one, and
            # the same thread count in every probe keeps float results (and so
            # fingerprints) from depending on the machine's load.
            torch.set_num_threads(1)
            for index, shape in enumerate(limits.probe_shapes):
                inputs = probe_inputs(shape, limits.probe_k, seed, limits.probe_scale, index)
                protected = frozenset(t.untyped_storage().data_ptr() for t in inputs)
                result = candidate.call(inputs, seed, protected, remaining())
                stored, zero = candidate.contained(remaining(), _checked_copy, result, shape, inputs[0].dtype)
                all_zero = zero and all_zero
                outputs.append(stored)
                del result, inputs
            digest = candidate.contained(remaining(), fingerprint, outputs, limits.fingerprint_digits)
            torch.set_num_threads(threads)
            if mapped is not None:
                phase, protected = "call", frozenset({mapped.storage_ptr})
                self._progress(0)
                for index, tensor_seed in enumerate(real_seeds[: len(mapped.entries)]):
                    name = real_names[index] if index < len(real_names) else ""
                    slot = mapped.entries[index][0]
                    start = time.monotonic()
                    result = candidate.call(mapped.views(index), tensor_seed, protected, limits.wall_seconds_per_call)
                    left = limits.wall_seconds_per_call - (time.monotonic() - start)
                    stored, zero = candidate.contained(
                        max(left, 0.001), _checked_copy, result, slot.shape, slot.torch_dtype
                    )
                    all_zero = zero and all_zero
                    outputs.append(stored)
                    del result
                    self._progress(index + 1)
                real_outputs = outputs[len(limits.probe_shapes) :]
                real = candidate.contained(limits.wall_seconds_per_call, fingerprint, real_outputs, limits.fingerprint_digits)
                # First half: the synthetic probes; second half: the real parameters.
                digest = f"{digest[:8]}{real[:8]}"
        except CandidateFailure as failure:
            if phase == "probe":
                wall = f"the probe's wall-clock limit of {limits.wall_seconds_per_probe:g}s"
            else:
                wall = f"the wall-clock limit of {limits.wall_seconds_per_call:g}s"
            failure = _explain_timeout(failure, limits, wall)
            reason = f"{name}: {failure.reason}" if name else failure.reason
            return Diagnosis(failure.status, reason, failure.line).to_dict()
        finally:
            torch.set_num_threads(threads)
            late = candidate.close(protected)
        if late is not None:
            return Diagnosis(late.status, late.reason, late.line).to_dict()
        return Diagnosis(Status.OK, fingerprint=digest, zero_output=all_zero).to_dict()

    def merge(self, message: dict[str, Any], fds: list[int], output: CappedText) -> dict[str, Any]:
        limits = self.limits
        deadline = time.monotonic() + limits.wall_seconds_per_model
        mapped = self._mapped(message, fds)
        if mapped is None:
            return Diagnosis(Status.RUNTIME, "sandbox internal error: task vectors were not sent").to_dict()
        out = message["out"]
        out_id = int(out["id"])
        if out_id not in self.outputs:
            if not out.get("fd") or not fds:
                return Diagnosis(Status.RUNTIME, "sandbox internal error: output buffer was not sent").to_dict()
            out_fd = fds.pop(0)
            try:
                self.outputs[out_id] = shm.map_fd(out_fd, int(out["nbytes"]), writable=True, populate=True)
            finally:
                os.close(out_fd)
        out_slots = [shm.Slot.from_json(s) for s in out["slots"]]
        names: list[str] = message["names"]
        seeds: list[int] = [int(s) for s in message["seeds"]]
        return self._merge_into(message, output, mapped, self.outputs[out_id], out_slots, names, seeds, deadline)

    def _merge_into(
        self,
        message: dict[str, Any],
        output: CappedText,
        mapped: _MappedSet,
        out_buffer: Any,
        out_slots: list[shm.Slot],
        names: list[str],
        seeds: list[int],
        deadline: float,
    ) -> dict[str, Any]:
        limits = self.limits
        prefix = bool(message.get("name_tensors", True))
        candidate = LoadedCandidate(_compiled(message), self.limiter, output)
        protected = frozenset({mapped.storage_ptr})

        def wall() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CandidateFailure(Status.TIMEOUT, "exceeded the wall-clock limit")
            return min(limits.wall_seconds_per_call, left)

        name = "<module>"
        self._progress(-1)
        try:
            candidate.load(wall())
            self._progress(0)
            out_base = shm.byte_tensor(out_buffer)
            all_zero = True
            for index, (name, seed, slot) in enumerate(zip(names, seeds, out_slots)):
                start = time.monotonic()
                budget = wall()
                result = candidate.call(mapped.views(index), seed, protected, budget)
                left = max(budget - (time.monotonic() - start), 0.001)
                # The expected shape is the staged slot's (the output slot has it too).
                zero = candidate.contained(left, _store_checked, result, shm.view(out_base, slot))
                all_zero = zero and all_zero
                del result
                self._progress(index + 1)
            del out_base
        except CandidateFailure as failure:
            if deadline - time.monotonic() <= 0.05:
                wall_limit = f"the whole-model wall-clock limit of {limits.wall_seconds_per_model:g}s"
            else:
                wall_limit = f"the wall-clock limit of {limits.wall_seconds_per_call:g}s"
            failure = _explain_timeout(failure, limits, wall_limit)
            reason = f"{name}: {failure.reason}" if prefix else failure.reason
            return Diagnosis(failure.status, reason, failure.line).to_dict()
        finally:
            late = candidate.close(protected)
        if late is not None:
            return Diagnosis(late.status, late.reason, late.line).to_dict()
        return Diagnosis(Status.OK, zero_output=all_zero).to_dict()


def _checked_copy(result: Any, shape: tuple[int, ...], dtype: torch.dtype) -> tuple[torch.Tensor, bool]:
    """A probe result, validated against the shape it was asked for, in the inputs' dtype; and whether it is all zeros."""
    check_result(result, shape)
    stored = torch.empty(shape, dtype=dtype)
    return stored, store_result(result, stored)


def _store_checked(result: Any, destination: torch.Tensor) -> bool:
    check_result(result, destination.shape)
    return store_result(result, destination)


def main(sock_fd: int) -> None:
    # No PR_SET_PDEATHSIG: it fires when the *thread* that started the worker
    # exits, which would kill workers of multi-threaded callers mid-request.
    # A worker whose caller died sees EOF on its socket and exits instead.
    sock = socket.socket(fileno=sock_fd)
    # The caller's start-up log, kept past the stdio redirection so that a
    # failure anywhere before "ready" still reaches SandboxError's message.
    startup_log = os.dup(2)
    try:
        hello, fds = protocol.recv(sock)
        if hello.get("protocol") != protocol.PROTOCOL_VERSION:
            message = (
                f"sandbox protocol mismatch (the caller speaks {hello.get('protocol')}, this worker "
                f"{protocol.PROTOCOL_VERSION}): the sandbox files changed on disk after the caller "
                "imported them; restart it\n"
            )
            os.write(startup_log, message.encode())
            return
        board = shm.ProgressBoard(fds[0], writable=True)
        os.close(fds[0])
        data = dict(hello["limits"])
        data["probe_shapes"] = tuple(tuple(s) for s in data["probe_shapes"])
        limits = SandboxLimits(**data)
        stdio = harden(limits, int(hello["threads"]))
        protocol.send(sock, {"event": "ready", "pid": os.getpid(), "protocol": protocol.PROTOCOL_VERSION})
    except BaseException:
        os.write(startup_log, traceback.format_exc().encode())
        raise
    finally:
        os.close(startup_log)
    WorkerServer(sock, limits, stdio, board).serve()
