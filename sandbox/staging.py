"""Task vectors and outputs in shared memory, as the caller keeps track of them."""

from __future__ import annotations

import os
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

from sandbox import shm
from sandbox.process import WorkerProcess, close_all

@dataclass
class Staged:
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

    def __init__(self, staged: Staged, owner: WorkerState) -> None:
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


class OutputPool:
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
            close_all([fd])
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
                close_all([fd])
                freed.append(buffer_id)
        if found is None:
            found = (new_id, shm.create(nbytes, "sandbox-merged"))
        return found[0], found[1], freed

    def close(self) -> None:
        self.closed = True
        while self.returned:
            close_all([self.returned.popleft()[1]])


class WorkerState:
    """Everything the finalizer must release; it holds no reference to the SandboxWorker."""

    def __init__(self) -> None:
        self.process: WorkerProcess | None = None
        self.spare: WorkerProcess | None = None
        # One LRU per entry point, so one-off merge_tensors calls (mergekit's
        # streaming path) never evict the whole-model set candidates share.
        self.staged: dict[str, OrderedDict[int, Staged]] = {"model": OrderedDict(), "tensors": OrderedDict()}
        # Sets staged by load_task_vectors stay until their TaskVectorSet goes.
        self.pinned: dict[int, Staged] = {}
        self.unpinned: deque[int] = deque()  # appended by finalizers, drained under the lock
        self.to_drop: list[int] = []
        self.outputs = OutputPool()
        self.closed = False

    def drain_unpinned(self) -> None:
        while self.unpinned:
            staged = self.pinned.pop(self.unpinned.popleft(), None)
            if staged is not None:
                close_all([staged.fd])
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
            close_all([staged.fd for staged in cache.values()])
            cache.clear()
        self.outputs.close()


TensorSpec = tuple[tuple[int, ...], torch.dtype]


def specs_of(groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> list[tuple[str, list[TensorSpec]]]:
    return [(name, [(tuple(t.shape), t.dtype) for t in tensors]) for name, tensors in groups]


def check_specs(name: str, group: Sequence[TensorSpec]) -> None:
    if not group:
        raise ValueError(f"{name}: no task vectors")
    for shape, dtype in group:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"{name}: task vectors must be floating point, got {dtype}")
        if (shape, dtype) != tuple(group[0]):
            raise ValueError(f"{name}: task vectors differ in shape or dtype")


def check_groups(groups: Sequence[tuple[str, Sequence[torch.Tensor]]]) -> None:
    for name, tensors in groups:
        for t in tensors:
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}: task vectors must be tensors, got {type(t).__name__}")
            if t.device.type != "cpu" or t.layout != torch.strided:
                raise ValueError(f"{name}: task vectors must be dense CPU tensors")
    for name, group in specs_of(groups):
        check_specs(name, group)


def copy_to_shared(
    specs: Sequence[tuple[str, Sequence[TensorSpec]]],
    groups: Iterable[tuple[str, Sequence[torch.Tensor]]],
    set_id: int,
) -> Staged:
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
    return Staged(id=set_id, fd=fd, nbytes=nbytes, names=tuple(name for name, _ in specs), entries=entries)
