"""Any merge function as a mergekit merge method, executed in the sandbox.

mergekit 0.1.5 builds methods with `@merge_method` over a `TensorGroup` and
looks them up by name in `mergekit.merge_methods.registry`. The kernel here
never runs the algorithm itself: it computes the task vectors of one tensor and
asks a sandbox worker process to merge them, so generated code stays inside the
sandbox also when mergekit's executor is the caller.
"""

from __future__ import annotations

import atexit
import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from mergekit import merge_methods
from mergekit.merge_methods import BasePolicy, InputContract, MergeMethod, OptionalTensorPolicy, TensorGroup, merge_method

from sandbox import SandboxLimits, SandboxWorker, tensor_seed
from seeds.filters import TensorFilter, parse_filter
from seeds.task_vectors import VECTOR_DTYPE
from selfdev.errors import UserError
from selfdev.merging.algorithm_file import AlgorithmFileError, read_algorithm
from selfdev.merging.inmemory import add_delta

DEFAULT_FILTER = "mlp"
# mergekit hands the worker one tensor at a time, each once: a staged set is never
# reused, and a failed call fails the whole merge, so neither a cache nor a warm
# spare worker would earn the memory they hold while a model streams through.
STREAMING_LIMITS = SandboxLimits(task_vector_cache=1, spare_worker=False)


class AlgorithmError(UserError):
    """A merge algorithm failed inside the sandbox (policy, runtime error, timeout, bad output)."""


_registered: dict[str, str] = {}  # method name -> code, so registering the same code twice is harmless
_own_worker: SandboxWorker | None = None  # started here on demand, closed by close_shared_worker
_lent_worker: SandboxWorker | None = None  # a caller's, active inside using_worker, never closed here


def shared_worker() -> SandboxWorker:
    """The worker the registered methods use: a lent one, else one started on first use."""
    global _own_worker
    if _lent_worker is not None:
        return _lent_worker
    if _own_worker is None:
        _own_worker = SandboxWorker(STREAMING_LIMITS)
    return _own_worker


def close_shared_worker() -> None:
    """Stop the worker started by `shared_worker`, if any (a later merge starts a new one)."""
    global _own_worker
    if _own_worker is not None:
        _own_worker.close()
        _own_worker = None


atexit.register(close_shared_worker)


@contextmanager
def using_worker(worker: SandboxWorker) -> Iterator[None]:
    """Route the registered methods through the caller's worker (and its limits) inside the block."""
    global _lent_worker
    previous, _lent_worker = _lent_worker, worker
    try:
        yield
    finally:
        _lent_worker = previous


@functools.lru_cache(maxsize=64)
def _filter(spec: str) -> TensorFilter:
    return parse_filter(spec)


def register_algorithm(name: str, code: str) -> MergeMethod:
    """Register `code` (source defining `merge(task_vectors) -> Tensor`) as mergekit method `name`.

    Method parameters: `filter` (which tensors to merge; the rest keep the base
    model's values) and `seed` (handed to the sandbox for seeded randomness).
    """
    if name in _registered:
        if _registered[name] != code:
            raise AlgorithmFileError(f"merge method {name!r} is already registered with different code")
        return merge_methods.get(name)
    if any(m.spec.name == name for m in merge_methods.registered_methods()):
        raise AlgorithmFileError(f"merge method {name!r} already exists in mergekit; rename the algorithm file")

    @merge_method(
        name=name,
        pretty_name=f"{name} (selfdev, sandboxed)",
        contract=InputContract(base=BasePolicy.REQUIRED, min_non_base=1),
        optional_tensor_policy=OptionalTensorPolicy.PASSTHROUGH_BASE_SINGLETON,
        uses_accelerator=False,
    )
    def sandboxed_merge(group: TensorGroup, filter: str = DEFAULT_FILTER, seed: int = 0) -> torch.Tensor:
        base = group.base.tensor
        tensor_name = group.metadata.name or ""
        # Unselected tensors return untouched: the experts' copies are never read from disk.
        if not base.is_floating_point() or not _filter(filter)(tensor_name, tuple(base.shape)):
            return base
        vectors = [entry.tensor.to(VECTOR_DTYPE) - base.to(VECTOR_DTYPE) for entry in group.non_base]
        # The per-tensor seed merge_model uses, so disk and in-memory merges draw the same random numbers.
        delta, diagnosis = shared_worker().merge_tensors(code, vectors, seed=tensor_seed(seed, tensor_name))
        if delta is None:
            where = f" (line {diagnosis.line})" if diagnosis.line else ""
            raise AlgorithmError(
                f"merge method {name!r} failed on {tensor_name}: {diagnosis.status.value}{where}: {diagnosis.reason}"
            )
        return add_delta(base, delta)

    merge_methods.register(sandboxed_merge)
    _registered[name] = code
    return sandboxed_merge


def register_algorithm_file(path: str | Path) -> str:
    """Register an algorithm file (see `algorithm_file`) under its method name; returns the name."""
    name, code = read_algorithm(path)
    register_algorithm(name, code)
    return name
