"""Task vectors: expert minus seed, per selected parameter tensor, computed lazily.

Nothing is read when a `TaskVectors` is built except config files and
safetensors headers (to check that the experts fit the seed). Each tensor is
read, memory-mapped, when it is asked for, so iterating holds one tensor's
worth of task vectors at a time; `load()` keeps them all for repeated merges.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import torch

from seeds.checkpoint import Checkpoint, open_checkpoint
from seeds.compat import check_compatible
from seeds.errors import SeedError
from seeds.filters import parse_filter

# Merge functions see float32 whatever the checkpoints store: bf16 differences of
# nearby weights lose most of their mantissa.
VECTOR_DTYPE = torch.float32


class TaskVectors:
    """The seed, its experts, and the names of the tensors a filter selects."""

    def __init__(
        self,
        seed: str | Path,
        experts: Sequence[str | Path],
        filter: str = "mlp",
    ) -> None:
        if not experts:
            raise SeedError("task vectors need at least one expert")
        try:
            self.filter = parse_filter(filter)
        except ValueError as e:
            raise SeedError(str(e)) from None
        self.seed: Checkpoint = open_checkpoint(seed)
        self.experts: list[Checkpoint] = [open_checkpoint(e) for e in experts]
        self.names: list[str] = [
            name for name, info in self.seed.tensors.items() if info.is_floating and self.filter(name, info.shape)
        ]
        if not self.names:
            raise SeedError(f"filter {filter!r} selects no tensor of {self.seed.folder}")
        check_compatible(self.seed, self.experts, self.names)

    def __len__(self) -> int:
        return len(self.names)

    def base(self, name: str) -> torch.Tensor:
        """The seed's tensor, in its stored dtype."""
        return self.seed.get(name)

    def expert_tensors(self, name: str) -> list[torch.Tensor]:
        """The experts' tensors, in their stored dtypes (what mergekit methods take)."""
        return [expert.get(name) for expert in self.experts]

    def vectors(self, name: str) -> list[torch.Tensor]:
        """expert - seed for one tensor, one per expert, in float32."""
        base = self.base(name).to(VECTOR_DTYPE)
        return [expert.to(VECTOR_DTYPE) - base for expert in self.expert_tensors(name)]

    def __iter__(self) -> Iterator[tuple[str, list[torch.Tensor]]]:
        for name in self.names:
            yield name, self.vectors(name)

    def specs(self) -> list[tuple[str, list[tuple[tuple[int, ...], torch.dtype]]]]:
        """(name, [(shape, dtype)] per expert) of every task vector, from the headers, in iteration order."""
        return [(name, [(tuple(self.seed.tensors[name].shape), VECTOR_DTYPE)] * len(self.experts)) for name in self.names]

    def load(self) -> dict[str, list[torch.Tensor]]:
        """Every selected tensor's task vectors in memory, for many merges over the same experts."""
        return dict(iter(self))

    def nbytes(self) -> int:
        """Size of all task vectors as merge functions see them (float32)."""
        element = torch.finfo(VECTOR_DTYPE).bits // 8
        return sum(len(self.experts) * element * math.prod(self.seed.tensors[n].shape) for n in self.names)
