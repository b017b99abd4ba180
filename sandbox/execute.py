"""Running one candidate on tensors inside the worker process: limits, calls, validation, fingerprints.

Only the worker imports this module; the caller's process never executes
candidate code.
"""

from __future__ import annotations

import gc
import math
import os
import re
import resource
import signal
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

import torch

from sandbox import heap, runtime
from sandbox.diagnosis import Status
from sandbox.guards import candidate_globals
from sandbox.limits import SandboxLimits
from sandbox.writes import WriteGuard
from sandbox.runtime import (
    CallContext,
    CappedText,
    InputMutation,
    Interrupted,
    PolicyViolation,
    line_in_frames,
    line_in_traceback,
)


class CandidateFailure(Exception):
    """A candidate failed; carries what the Diagnosis will say."""

    def __init__(self, status: Status, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.line = line


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Limiter:
    """Per-call address-space, CPU and wall-clock limits inside the worker.

    Hard limits stay unlimited: an unprivileged process can never raise a
    hard limit again, and the footprint grows as task-vector sets get mapped,
    so each call sets soft limits relative to the moment it starts.
    """

    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self.active = False
        signal.signal(signal.SIGALRM, self._on_signal)
        signal.signal(signal.SIGXCPU, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        kind = "wall-clock" if signum == signal.SIGALRM else "CPU"
        ctx = runtime._current
        if ctx is not None and ctx.interrupted is None:
            ctx.interrupted = kind
            ctx.interrupted_line = line_in_frames(frame)
        if self.active:
            # Fire again shortly in case the candidate swallows the exception;
            # the caller kills the process if it never gets control back.
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            raise Interrupted(kind)

    @contextmanager
    def applied(self, wall_seconds: float) -> Iterator[None]:
        unlimited = resource.RLIM_INFINITY
        budget, kept = self.limits.address_space_bytes, heap.free_bytes()
        if kept > budget // 4:
            heap.trim()
            kept = heap.free_bytes()
        # Memory the heap kept free is reused without growing the address space: it counts against the budget.
        resource.setrlimit(resource.RLIMIT_AS, (_vm_bytes() + max(budget - kept, 0), unlimited))
        cpu_budget = math.ceil(_cpu_seconds() + self.limits.cpu_seconds_per_call)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_budget, unlimited))
        signal.setitimer(signal.ITIMER_REAL, max(wall_seconds, 0.001))
        self.active = True
        try:
            yield
        finally:
            self.active = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            resource.setrlimit(resource.RLIMIT_AS, (unlimited, unlimited))
            resource.setrlimit(resource.RLIMIT_CPU, (unlimited, unlimited))


_ALLOCATION_FAILURE = re.compile(
    r"can't allocate memory|not enough memory|Cannot allocate memory|out of memory|bad_alloc|"
    r"Storage size calculation overflowed|invalid array size|allocate \d+ bytes",
    re.I,
)


def _classify(exc: BaseException, ctx: CallContext) -> CandidateFailure:
    line = line_in_traceback(exc.__traceback__)
    if ctx.violation is not None:
        return CandidateFailure(Status.POLICY, ctx.violation, ctx.violation_line or line)
    if ctx.interrupted is not None:
        limit = "CPU-time" if ctx.interrupted == "CPU" else "wall-clock"
        return CandidateFailure(Status.TIMEOUT, f"exceeded the {limit} limit", ctx.interrupted_line or line)
    if isinstance(exc, PolicyViolation):
        return CandidateFailure(Status.POLICY, str(exc), line)
    if isinstance(exc, Interrupted):
        return CandidateFailure(Status.TIMEOUT, f"exceeded the {exc} limit", line)
    try:
        text = str(exc)
    except BaseException:  # a candidate-made argument whose str() fails
        text = "<unprintable message>"
    message = text.strip().splitlines()[0][:1000] if text.strip() else ""
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _ALLOCATION_FAILURE.search(text[:2000])):
        return CandidateFailure(Status.MEMORY, f"{type(exc).__name__}: {message}".rstrip(": "), line)
    return CandidateFailure(Status.RUNTIME, f"{type(exc).__name__}: {message}".rstrip(": "), line)


class LoadedCandidate:
    """One candidate's compiled module loaded in the worker: its globals and its merge function."""

    def __init__(self, code: CodeType, limiter: Limiter, output: CappedText) -> None:
        self.code = code
        self.limiter = limiter
        self.output = output
        self.globals = candidate_globals()
        self.merge: Any = None
        # Set once the candidate has written into an input: from then on every
        # call gets private copies instead of the shared, read-only tensors.
        self.copy_inputs = False

    def _guarded(self, ctx: CallContext, wall_seconds: float, fn: Any, *args: Any, candidate_code: bool = True) -> Any:
        """fn(*args) under the call's limits; candidate code also under the write guard."""
        if candidate_code:
            # The CPU generator only: torch.manual_seed also queues lazy seeding
            # of CUDA, XPU and MTIA, each of which formats the whole Python
            # stack (about 0.3 ms a call, every tensor); this worker is CPU-only,
            # so the state candidates see is the same.
            torch.default_generator.manual_seed(ctx.seed)
        runtime.activate(ctx)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                try:
                    with self.limiter.applied(wall_seconds), torch.no_grad():
                        if candidate_code:
                            with WriteGuard(ctx):
                                result = fn(*args)
                        else:
                            result = fn(*args)
                    error: BaseException | None = None
                except BaseException as exc:  # the candidate may raise anything
                    result, error = None, exc
        finally:
            runtime.activate(None)
        for warning in caught:
            self.output.write(f"warning: {warning.category.__name__}: {warning.message}\n")
        if ctx.mutated_input:
            raise InputMutation()
        if isinstance(error, CandidateFailure) and ctx.violation is None and ctx.interrupted is None:
            raise error
        if error is not None or ctx.violation is not None or ctx.interrupted is not None:
            failure = _classify(error if error is not None else RuntimeError("swallowed failure"), ctx)
            if error is not None:
                # The traceback's frames hold the candidate's tensors in a
                # reference cycle; cutting it frees them without a full gc pass.
                error.__traceback__ = None
            raise failure
        return result

    def contained(self, wall_seconds: float, fn: Any, *args: Any) -> Any:
        """The sandbox's own work on what a candidate returned (validation, copying, fingerprinting),
        under the same limits as the call, so no result can make it exceed them."""
        return self._guarded(CallContext(0, (), self.output), wall_seconds, fn, *args, candidate_code=False)

    def close(self, protected: frozenset[int] = frozenset(), wall_seconds: float = 1.0) -> CandidateFailure | None:
        """Drop everything the candidate made and collect it, still guarded and limited.

        Its module namespace, functions and globals reference each other; if
        collecting them ran any of its code (the static gate refuses the
        constructs that defer code, generators and classes with finalizers,
        so none should), that code runs here, under the write guard and the
        limits, and is reported instead of reaching a later candidate.
        """
        self.globals.clear()
        self.merge = None
        ctx = CallContext(0, protected, self.output)
        try:
            self._guarded(ctx, max(wall_seconds, 0.05), gc.collect)
        except (CandidateFailure, InputMutation) as failure:
            if isinstance(failure, CandidateFailure):
                return CandidateFailure(failure.status, f"code ran after its call ended: {failure.reason}", failure.line)
            return CandidateFailure(Status.POLICY, "code ran after its call ended and wrote into a task vector")
        return None

    def load(self, wall_seconds: float) -> None:
        ctx = CallContext(0, (), self.output)
        self._guarded(ctx, wall_seconds, exec, self.code, self.globals)
        merge = self.globals.get("merge")
        if not callable(merge):
            raise CandidateFailure(Status.SYNTAX, "module does not define a callable 'merge'")
        self.merge = merge

    def call(self, inputs: Sequence[torch.Tensor], seed: int, protected: frozenset[int], wall_seconds: float) -> Any:
        """merge(list(inputs)); rerun on private copies if the candidate writes into an input.

        `inputs` must be views made for this call alone: an in-place change of
        their shape or strides would otherwise outlive it (the write guard
        refuses those on inputs, this is the second line).
        """
        started = time.monotonic()
        if not self.copy_inputs:
            try:
                return self._guarded(CallContext(seed, protected, self.output), wall_seconds, self.merge, list(inputs))
            except InputMutation:
                self.copy_inputs = True
        copies = [t.clone() for t in inputs]
        remaining = wall_seconds - (time.monotonic() - started)
        return self._guarded(CallContext(seed, (), self.output), remaining, self.merge, copies)


def check_result(result: Any, shape: Sequence[int]) -> None:
    """Type, layout, dtype kind and shape of a merge() result; values are checked after the cast.

    `shape` comes from the staged slot or the probe's specification, never
    from the live input tensors, which the candidate held.
    """
    if type(result) is not torch.Tensor:
        raise CandidateFailure(Status.BAD_OUTPUT, f"merge returned {type(result).__name__}, not a tensor")
    if result.layout != torch.strided or result.device.type != "cpu" or result.is_quantized:
        raise CandidateFailure(Status.BAD_OUTPUT, "merge returned a tensor that is not a dense CPU tensor")
    if not result.is_floating_point():
        raise CandidateFailure(Status.BAD_OUTPUT, f"merge returned a {result.dtype} tensor; a floating dtype is required")
    if tuple(result.shape) != tuple(shape):
        raise CandidateFailure(Status.BAD_OUTPUT, f"merge returned shape {tuple(result.shape)}, expected {tuple(shape)}")


_CHECKABLE = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})

# Read once: os.cpu_count() reads /sys on every call, and this is asked once per tensor.
_CPUS = os.cpu_count() or 1


@contextmanager
def _threads_for_copying() -> Iterator[None]:
    """One thread when the machine is oversubscribed, else torch's pool.

    On a saturated machine the pool's hand-offs wait for descheduled threads
    and a copy this size gets several times slower than on one thread; on
    an idle one the pool is about twice as fast.
    """
    threads = torch.get_num_threads()
    single = threads > 1 and os.getloadavg()[0] >= _CPUS
    if single:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if single:
            torch.set_num_threads(threads)


@torch.no_grad()
def store_result(result: torch.Tensor, destination: torch.Tensor) -> bool:
    """Cast `result` into `destination`, require finite values; return whether it is all zeros.

    One copy and one aminmax, which propagates NaN and reports +-inf: the
    sandbox's only per-tensor pass over the data that direct execution does
    not make.
    """
    with _threads_for_copying():
        destination.copy_(result)
        if destination.numel() == 0:
            return False
        checked = destination if destination.dtype in _CHECKABLE else destination.float()
        low, high = (float(v) for v in torch.aminmax(checked))
    if not (math.isfinite(low) and math.isfinite(high)):
        raise _non_finite(result, destination)
    return low == 0.0 and high == 0.0


def _non_finite(result: torch.Tensor, destination: torch.Tensor) -> CandidateFailure:
    cast = "" if result.dtype == destination.dtype else f" after casting to {destination.dtype}"
    return CandidateFailure(Status.BAD_OUTPUT, f"merge returned NaN or Inf values{cast}")
