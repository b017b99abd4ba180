"""Merged weights in memory, for an evaluator that already holds the seed model.

Two paths give a dict name -> tensor for `backend.update_weights`, covering the
selected tensors only (the others keep the seed's values in the loaded model):

- generated code: seed + merge(task vectors), the merge run by a sandbox worker;
- human methods (task arithmetic, TIES, DARE-TIES, breadcrumbs, Model Stock):
  mergekit's own method objects applied tensor by tensor, so a baseline grid is
  tuned without writing each point to disk and gives what `run_merge` writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch

from evals.progress import progress_bar
from mergekit import merge_methods
from mergekit.merge_methods.base import TensorGroup

from sandbox import CheckedCode, Diagnosis, SandboxWorker, TaskVectorSet
from seeds.checkpoint import CheckpointTensors
from seeds.task_vectors import VECTOR_DTYPE, TaskVectors


def add_delta(base: torch.Tensor, delta: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """seed + merged task vector, summed in float32 and cast to the model's dtype."""
    return (base.to(VECTOR_DTYPE) + delta.to(VECTOR_DTYPE)).to(dtype or base.dtype)


@dataclass
class MergeInputs:
    """The selected seed tensors and their task vectors, loaded once for many candidate merges.

    The seed's tensors are read from its files at each merge, not kept: the
    page cache serves the reads, and this process holds no second copy of
    them next to the evaluation model. With a
    worker, the task vectors live only in that worker's shared memory
    (`vectors` is its TaskVectorSet), streamed there one parameter at a time:
    this process never holds a private copy of them next to the shared one.
    """

    base: Mapping[str, torch.Tensor]
    vectors: Mapping[str, list[torch.Tensor]] | TaskVectorSet

    @classmethod
    def load(cls, task_vectors: TaskVectors, worker: SandboxWorker | None = None) -> "MergeInputs":
        base = CheckpointTensors(task_vectors.seed, task_vectors.names)
        if worker is None:
            return cls(base=base, vectors=task_vectors.load())
        return cls(base=base, vectors=worker.stream_task_vectors(task_vectors.specs(), task_vectors))

    def close(self) -> None:
        """Release shared task vectors now rather than when this object is collected."""
        if isinstance(self.vectors, TaskVectorSet):
            self.vectors.close()


class MergedWeights(Mapping[str, torch.Tensor]):
    """seed + merged task vector per tensor, computed when read.

    A backend's update_weights copies one tensor at a time into the model, so
    at most one merged tensor exists besides the model's own weights.
    """

    def __init__(self, base: Mapping[str, torch.Tensor], deltas: Mapping[str, torch.Tensor], dtype: torch.dtype | None):
        self.base, self.deltas, self.dtype = base, deltas, dtype

    def __getitem__(self, name: str) -> torch.Tensor:
        return add_delta(self.base[name], self.deltas[name], self.dtype)

    def __iter__(self) -> Iterator[str]:
        return iter(self.deltas)

    def __len__(self) -> int:
        return len(self.deltas)


def merge_generated(
    worker: SandboxWorker,
    code: str | CheckedCode,
    inputs: MergeInputs,
    *,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> tuple[MergedWeights | None, Diagnosis]:
    """Run `code`'s merge() over every selected tensor in the sandbox; None plus the diagnosis if it fails.

    Code checked already (`sandbox.check`) is not checked again.
    """
    deltas, diagnosis = worker.merge_model(code, inputs.vectors, seed=seed)
    if deltas is None:
        return None, diagnosis
    return MergedWeights(inputs.base, deltas, dtype), diagnosis


def merge_with_method(
    task_vectors: TaskVectors,
    method: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    dtype: torch.dtype | None = None,
    random_seed: int | None = None,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """A registered mergekit method over the selected tensors of seed and experts.

    `parameters` are the method's, as in a mergekit YAML: per-expert ones
    (weight, density, ...) take a scalar for all experts or a list in expert order.
    """
    merger = merge_methods.get(method)
    ids = ["seed", *(f"expert-{i}" for i in range(len(task_vectors.experts)))]
    if random_seed is not None:
        torch.manual_seed(random_seed)  # DARE's random masks: the same grid point gives the same merge
    merged = {}
    # TIES and its kin take minutes on 2 cores: a piped log sees the merge move.
    with torch.no_grad(), progress_bar(f"merge {method}", len(task_vectors.names), show=progress) as advance:
        for name in task_vectors.names:
            tensors = [task_vectors.base(name), *task_vectors.expert_tensors(name)]
            group = TensorGroup.from_tensors(tensors, ids=ids, base_index=0, name=name)
            (out,) = merger((group,), parameters=dict(parameters or {}))
            merged[name] = out.to(dtype) if dtype is not None else out
            advance(1)
    return merged
