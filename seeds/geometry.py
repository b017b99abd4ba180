"""How large and how alike the experts' task vectors are: what a merge has to work with.

A merge can only move the seed as far as its experts moved it, and can only trade
one expert's skill against another's when their changes point in different
directions. Two numbers say which case a run is in:

- relative size ||tau_i|| / ||W||: expert i's change (over the filtered tensors)
  against the seed's weights there. Around 1e-4 the merged models are the seed for
  every practical purpose; finetuned 7B experts sit around 1e-3 to 1e-2.
- cosine(tau_i, tau_j) over the same tensors: near 1, the experts learned the same
  change and every merge is a rescaling of it.

Computed in one pass over the tensors (one tensor's task vectors in memory at a
time), accumulating in float64 so large models do not lose the small terms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from seeds.task_vectors import TaskVectors

# Above this cosine two experts are called nearly parallel: their merges differ by little more than scale.
PARALLEL_COSINE = 0.9
_CHUNK = 1 << 22


@dataclass(frozen=True)
class ExpertGeometry:
    """Sizes and pairwise cosines of the experts' task vectors over one tensor filter."""

    filter: str
    experts: list[str]  # labels, in the order of the rows below
    tensors: int  # how many tensors the filter selected
    numel: int  # numbers per task vector
    seed_norm: float  # ||W|| over the selected tensors
    tau_norms: list[float]  # ||tau_i||
    cosines: list[list[float]]  # cos(tau_i, tau_j); 1 on the diagonal, nan where a task vector is zero

    @property
    def relative(self) -> list[float]:
        """||tau_i|| / ||W|| per expert."""
        return [n / self.seed_norm if self.seed_norm else math.nan for n in self.tau_norms]

    def pairs(self) -> list[tuple[str, str, float]]:
        """(expert, other expert, cosine) for every unordered pair."""
        k = len(self.experts)
        return [(self.experts[i], self.experts[j], self.cosines[i][j]) for i in range(k) for j in range(i + 1, k)]

    def parallel_pairs(self, threshold: float = PARALLEL_COSINE) -> list[tuple[str, str, float]]:
        """Expert pairs whose task vectors are nearly parallel (cosine above `threshold`)."""
        return [(a, b, c) for a, b, c in self.pairs() if c > threshold]

    def warnings(self) -> list[str]:
        """One line per reason the merges of these experts can hardly differ from each other or from the seed."""
        lines = [
            f"experts {a} and {b} are nearly parallel (cosine {c:.3f} > {PARALLEL_COSINE}): "
            "their merges differ by little more than a scale"
            for a, b, c in self.parallel_pairs()
        ]
        zero = [name for name, n in zip(self.experts, self.tau_norms) if n == 0]
        if zero:
            lines.append(f"experts {', '.join(zero)} equal the seed on the {self.filter!r} tensors")
        return lines

    def to_json(self) -> dict:
        return {**asdict(self), "relative": self.relative}

    @classmethod
    def from_json(cls, data: dict) -> "ExpertGeometry":
        fields = {k: data[k] for k in cls.__dataclass_fields__}
        return cls(**fields)


def expert_geometry(
    seed: str | Path,
    experts: Sequence[str | Path],
    filter: str = "mlp",
    labels: Sequence[str] | None = None,
) -> ExpertGeometry:
    """Sizes and cosines of `experts`' task vectors against `seed` over the tensors `filter` selects."""
    tv = TaskVectors(seed, experts, filter)
    k = len(tv.experts)
    gram = torch.zeros(k, k, dtype=torch.float64)
    seed_sq = 0.0
    numel = 0
    for name in tv.names:
        base = tv.base(name).flatten()
        experts_ = [e.flatten() for e in tv.expert_tensors(name)]
        # In float64 chunks: a 7B MLP matrix's three task vectors would take ~1.4 GB at once.
        for start in range(0, base.numel(), _CHUNK):
            b = base[start:start + _CHUNK].to(torch.float64)
            taus = torch.stack([e[start:start + _CHUNK].to(torch.float64) - b for e in experts_])
            gram += taus @ taus.T
            seed_sq += float(b @ b)
        numel += base.numel()
    norms = gram.diagonal().clamp_min(0).sqrt()
    outer = torch.outer(norms, norms)
    cosines = torch.where(outer > 0, gram / outer.clamp_min(1e-300), torch.full_like(gram, math.nan))
    return ExpertGeometry(
        filter=filter,
        experts=list(labels) if labels is not None else [Path(e).name for e in experts],
        tensors=len(tv.names),
        numel=numel,
        seed_norm=math.sqrt(seed_sq),
        tau_norms=[float(n) for n in norms],
        cosines=[[float(c) for c in row] for row in cosines],
    )
