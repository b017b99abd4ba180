"""What the run's experts give a merge to work with, recorded once in the archive and shown in the report.

Merging can only discover something when the experts moved the seed measurably and
in different directions. At the experts stage the run records the relative size
and pairwise cosines of the task vectors it merges (`seeds.geometry`, over the
run's filter) and, for debate experts, their held-out answers next to the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from seeds.geometry import ExpertGeometry, expert_geometry
from selfdev.archive import Archive
from selfdev.scores import Evaluation, Paired, paired

GEOMETRY_KEY = "expert_geometry"
HELD_OUT_KEY = "expert_held_out"


def record_experts(
    archive: Archive, seed: str, experts: list[str], filter: str, log: Callable[[str], None] = print
) -> ExpertGeometry:
    """Measure the experts once per run (a resumed run reads the record) and log what a merge can expect."""
    data = archive.meta(GEOMETRY_KEY)
    if data is None:
        geometry = expert_geometry(seed, experts, filter, labels=expert_labels(experts))
        archive.set_meta(GEOMETRY_KEY, geometry.to_json())
        from seeds.debate import held_out_metrics

        held_out = held_out_metrics(experts)
        if held_out is not None:
            archive.set_meta(HELD_OUT_KEY, {k: held_out[k] for k in ("eval", "seed", "experts") if k in held_out})
    else:
        geometry = ExpertGeometry.from_json(data)
    sizes = ", ".join(f"{name} {size:.2e}" for name, size in zip(geometry.experts, geometry.relative))
    cosines = ", ".join(f"{a}/{b} {c:.3f}" for a, b, c in geometry.pairs())
    log(f"experts: task vector size ||tau||/||W|| over {filter!r}: {sizes}; cosines: {cosines or '-'}")
    for line in geometry.warnings():
        log(f"warning: {line}")
    return geometry


def expert_labels(experts: list[str]) -> list[str]:
    """Folder names, with the parent's where names repeat (debate experts: iter-0/generator-0)."""
    names = [Path(e).name for e in experts]
    if len(set(names)) == len(names):
        return names
    return [f"{Path(e).parent.name}/{Path(e).name}" for e in experts]


@dataclass(frozen=True)
class ExpertRow:
    """One expert in the report: its task vector's size and direction, its held-out accuracy against the seed's."""

    name: str
    relative: float  # ||tau|| / ||W|| over the run's filter
    cosines: dict[str, float]  # to every other expert
    held_out: Evaluation | None
    vs_seed: Paired | None  # against the seed agent in the same slot, on the same problems


def expert_rows(geometry: dict | None, held_out: dict | None) -> list[ExpertRow]:
    """Report rows from the two archive records; either may be missing (an older run, named experts)."""
    if geometry is None:
        return []
    g = ExpertGeometry.from_json(geometry)
    seed_evals = _evaluations(held_out, "seed") if held_out else []
    expert_evals = _evaluations(held_out, "experts") if held_out else []
    rows = []
    for i, name in enumerate(g.experts):
        ev = expert_evals[i] if i < len(expert_evals) else None
        seed_ev = seed_evals[i] if i < len(seed_evals) else None
        rows.append(
            ExpertRow(
                name=name,
                relative=g.relative[i],
                cosines={other: g.cosines[i][j] for j, other in enumerate(g.experts) if j != i},
                held_out=ev,
                vs_seed=paired(ev, seed_ev) if ev is not None and seed_ev is not None else None,
            )
        )
    return rows


def _evaluations(held_out: dict, block: str) -> list[Evaluation]:
    """Per-agent held-out outcomes of `block` ("seed" or "experts"), if the metrics kept them per problem."""
    summary = held_out.get(block) or {}
    ids, correct = summary.get("ids"), summary.get("correct_per_agent")
    if not ids or not correct:
        return []
    return [Evaluation.of(ids, (bool(c) for c in agent)) for agent in correct]
