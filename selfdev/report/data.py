"""The numbers of one discovery run, read from its archive: per-iteration rates, the search's best, the test table.

Every score carries its n and a 95% interval; every comparison is paired on
the problems both models saw (`selfdev.scores`). The headline is the test
score of the one selected algorithm against the seed and tuned task
arithmetic; a difference inside its noise is reported as no difference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seeds.geometry import ExpertGeometry
from selfdev import scores
from selfdev.archive import Archive
from selfdev.budget import Plan
from selfdev.config import ConfigError, DiscoveryConfig
from selfdev.experts_record import GEOMETRY_KEY, HELD_OUT_KEY, ExpertRow, expert_rows
from selfdev.generator import directions
from selfdev.run_dir import RunDir
from selfdev.scores import Estimate, Evaluation, Paired
from selfdev.stages import ASKED_AGAIN, CandidateRecord


@dataclass
class IterationRow:
    iteration: int
    sampled: int
    executable: Estimate  # share the sandbox ran, with its Wilson interval
    duplicates: int  # same fingerprint as an earlier candidate: its evaluation was reused, not measured
    evaluated: int  # executable, not a duplicate, scored on at least the first search slice
    reached_last: int  # of those, the ones the cascade kept to the last slice
    first_slice_mean: Estimate  # accuracy of the evaluated ones on the first slice (shared by all)
    first_slice_median: Estimate
    best: Evaluation | None  # the iteration's best by the run's one ranking
    failures: dict[str, int]  # status -> count, for candidates that did not run
    dpo: dict[str, float] | None  # train_loss, pairs, steps, rejected, rejected_failures


@dataclass
class ProposalRow:
    """One iteration's candidates of one proposal kind (paper, evolve, repair) and arm (main, control)."""

    iteration: int
    proposal: str
    arm: str
    sampled: int
    executable: Estimate  # share the sandbox ran, with its Wilson interval
    distinct: int  # distinct fingerprints among the executable ones
    copies: int  # executable ones that compute a reference's function (the prompt's example, a known algorithm)
    failures: dict[str, int]  # status -> count, for candidates that did not run
    repaired: Estimate | None  # repairs: share of the repaired candidates that some repair made run
    median_dev: Estimate  # median first-slice accuracy of the measured ones (DPO arm against the control arm)


@dataclass
class DirectionRow:
    """One iteration's fresh `evolve` samples of the main arm that asked for one direction of change (the ones the
    bandit learns from, selfdev.generator.directions)."""

    iteration: int
    direction: str
    asked: int
    executable: Estimate  # share the sandbox ran, with its Wilson interval
    new: int  # ran and computed a function not seen before in the run (the bandit also leaves out trivial merges)


@dataclass
class ArmRow:
    """One iteration's DPO arm against its control arm (the generator without DPO, same prompt and temperature)."""

    iteration: int
    proposal: str
    # Share of replies that ran, paired: the arms answer the same prompts with the same sampling seed, reply i of
    # one against reply i of the other (exact McNemar, paired bootstrap), as two models on the same problems.
    executable: scores.Paired
    # First-slice accuracy of every reply that ran and was scored, a repeat with the score of the function it
    # repeats (a copy of the prompt's example scores as the example): what each arm's replies are worth.
    dev: scores.Unpaired  # difference of medians, bootstrap interval, Mann-Whitney U


@dataclass
class ScoredRow:
    """A discovered algorithm, a reference or a tuned baseline, with every evaluation it has."""

    name: str
    source: str  # 'discovered', 'reference' or 'baseline'
    dev: Evaluation | None
    selection: Evaluation | None = None
    test: Evaluation | None = None
    params: str = ""
    candidate_id: int | None = None
    iteration: int | None = None
    code: str | None = None


@dataclass
class TestRow:
    """One model on test, paired against the seed and against tuned task arithmetic."""

    name: str
    source: str
    test: Evaluation
    vs_seed: Paired | None
    vs_task_arithmetic: Paired | None


@dataclass
class RunSummary:
    run_dir: str
    task: str | None
    slices: list[int]  # search-dev problems at each cascade stage
    iterations: list[IterationRow]
    proposals: list[ProposalRow]  # per iteration, proposal kind and arm
    references: list[ScoredRow]
    baselines: list[ScoredRow]
    baseline_evaluations: int  # merged models the baselines scored on dev: the budget discovery is compared with
    top: list[ScoredRow]  # the search's best by the one ranking, with selection scores where re-scored
    selected: int | None  # the candidate id picked on selection-dev, the only one tested
    test: list[TestRow]
    notes: list[str]  # what the numbers cannot show: small n, missing parts
    scores_by_iteration: dict[int, list[float]]  # first-slice accuracies of the evaluated candidates
    evaluation_order: list[tuple[float, float, float]]  # (accuracy, lo, hi) on the first slice, in archive order
    experts: list[ExpertRow] = field(default_factory=list)  # task vector sizes, cosines, held-out accuracies
    arms: list[ArmRow] = field(default_factory=list)  # with generator.control: the DPO arm against the control arm
    directions: list[DirectionRow] = field(default_factory=list)  # evolve: per iteration and direction of change
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_config(path: Path) -> tuple[DiscoveryConfig | None, list[str]]:
    """The run's config as the run read it; a missing or broken one is a note, and the archive stands in for it."""
    if not path.is_file():
        return None, []
    try:
        return DiscoveryConfig.load(path), []
    except ConfigError as e:
        return None, [f"The run's config does not validate ({e}); cascade slices are read from the archive."]


def _dpo_metrics(run: RunDir, iteration: int) -> dict[str, float] | None:
    # train_dpo writes its metrics next to the adapter it saves.
    try:
        data = json.loads((run.adapter(iteration) / "dpo_metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    keys = ("train_loss", "pairs", "steps", "rejected", "rejected_failures")
    return {k: data[k] for k in keys if isinstance(data.get(k), (int, float))}


def _measured(c: CandidateRecord) -> bool:
    return c.kind == "generated" and c.executable and c.duplicate_of is None and c.dev is not None


def _failures(pool: list[CandidateRecord]) -> dict[str, int]:
    failures: dict[str, int] = {}
    for c in pool:
        if not c.executable:
            failures[c.status] = failures.get(c.status, 0) + 1
    return failures


def _first_slice(measured: list[CandidateRecord], slices: list[int]) -> list[float]:
    return [c.dev.prefix(slices[0]).accuracy for c in measured] if slices else []


def _repair_success(repairs: list[CandidateRecord], everything: dict[int, CandidateRecord]) -> Estimate:
    """Of the candidates that were repaired, the share some repair (at any depth) made run."""

    def root(c: CandidateRecord) -> int:
        while c.parent_id is not None and c.parent_id in everything:
            c = everything[c.parent_id]
        return c.id

    roots: dict[int, bool] = {}
    for r in repairs:
        key = root(r)
        roots[key] = roots.get(key, False) or r.executable
    return scores.rate(sum(roots.values()), len(roots))


def _proposal_rows(
    iteration: int, pool: list[CandidateRecord], slices: list[int], references: set[str]
) -> list[ProposalRow]:
    everything = {c.id: c for c in pool}
    rows = []
    for proposal, arm in sorted({(c.proposal, c.arm) for c in pool}, key=lambda k: (k[0] in ASKED_AGAIN, k)):
        group = [c for c in pool if (c.proposal, c.arm) == (proposal, arm)]
        executable = [c for c in group if c.executable]
        rows.append(
            ProposalRow(
                iteration=iteration,
                proposal=proposal,
                arm=arm,
                sampled=len(group),
                executable=scores.rate(len(executable), len(group)),
                distinct=len({c.fingerprint for c in executable if c.fingerprint}),
                copies=sum(c.fingerprint in references for c in executable),
                failures=_failures(group),
                repaired=_repair_success(group, everything) if proposal == "repair" else None,
                median_dev=scores.median_estimate(_first_slice([c for c in group if _measured(c)], slices)),
            )
        )
    return rows


def _direction_rows(iteration: int, pool: list[CandidateRecord]) -> list[DirectionRow]:
    asked: dict[int, list[CandidateRecord]] = {}
    for c in pool:
        index = directions.asked(c)
        if index is not None:
            asked.setdefault(index, []).append(c)
    return [
        DirectionRow(
            iteration, directions.NAMES[i], len(group), scores.rate(sum(c.executable for c in group), len(group)),
            sum(c.executable and c.duplicate_of is None for c in group),
        )
        for i, group in sorted(asked.items())
    ]


def _arm_rows(iteration: int, pool: list[CandidateRecord], slices: list[int]) -> list[ArmRow]:
    rows = []
    # Repairs and revisions are left out: each arm asks its own candidates again, so repair i of one arm and of the
    # other answer different requests and cannot be paired.
    for proposal in sorted({c.proposal for c in pool if c.arm == "control"} - ASKED_AGAIN):
        main, control = (
            sorted((c for c in pool if (c.proposal, c.arm) == (proposal, arm)), key=lambda c: c.sample_index)
            for arm in ("main", "control")
        )
        ran = [scores.Evaluation.of((str(i) for i in range(len(group))), (c.executable for c in group))
               for group in (main, control)]
        worth = [[c.dev.prefix(slices[0]).accuracy for c in group if c.executable and c.dev is not None] if slices else []
                 for group in (main, control)]
        rows.append(ArmRow(iteration, proposal, scores.paired(*ran), scores.median_difference(*worth)))
    return rows


def _iteration_row(iteration: int, pool: list[CandidateRecord], slices: list[int], dpo: dict | None) -> IterationRow:
    executable = [c for c in pool if c.executable]
    measured = [c for c in pool if _measured(c)]
    first = _first_slice(measured, slices)
    failures = _failures(pool)
    best = scores.best(measured)
    return IterationRow(
        iteration=iteration,
        sampled=len(pool),
        executable=scores.rate(len(executable), len(pool)),
        duplicates=sum(c.duplicate_of is not None for c in executable),
        evaluated=len(measured),
        reached_last=sum(c.dev.n >= slices[-1] for c in measured) if slices else 0,
        first_slice_mean=scores.mean_estimate(first, bounds=(0.0, 1.0)),
        first_slice_median=scores.median_estimate(first),
        best=None if best is None else best.dev,
        failures=failures,
        dpo=dpo,
    )


def _row(c: CandidateRecord) -> ScoredRow:
    source = {"generated": "discovered"}.get(c.kind, c.kind)
    name = c.name or f"#{c.id}"
    params = ", ".join(f"{k}={v}" for k, v in c.params.items())
    return ScoredRow(name, source, c.dev, c.selection, c.test, params, c.id, c.iteration if c.kind == "generated" else None, c.code)


def _test_rows(rows: list[ScoredRow]) -> list[TestRow]:
    seed = next((r.test for r in rows if r.source == "reference" and r.name == "seed" and r.test), None)
    # Tuned task arithmetic when the baselines ran, else the reference (the prompt's one-shot example).
    ta = next((r.test for r in rows if r.source == "baseline" and r.name == "task_arithmetic" and r.test), None)
    ta = ta or next((r.test for r in rows if r.source == "reference" and r.name == "task_arithmetic" and r.test), None)
    out = []
    for r in rows:
        if r.test is None:
            continue
        vs_seed = None if seed is None or r.test is seed else scores.paired(r.test, seed)
        vs_ta = None if ta is None or r.test is ta else scores.paired(r.test, ta)
        out.append(TestRow(r.name, r.source, r.test, vs_seed, vs_ta))
    return out


def _notes(summary_test: list[TestRow], selected: int | None, finished: bool, below_seed: int | None = None) -> list[str]:
    notes = []
    if not finished:
        notes.append("The run has not finished: the selection and test sections may be missing or partial.")
    if selected is None and finished and below_seed is not None:
        notes.append(
            f"No algorithm was selected: the best finalist (#{below_seed}) scored below the unmerged seed on "
            "selection-dev, so none was tested."
        )
    elif selected is None and finished:
        notes.append("No algorithm was selected (none was scored on the selection slice), so none was tested.")
    if summary_test:
        n = min(r.test.n for r in summary_test)
        smallest = scores.detectable_difference(n)
        notes.append(
            f"With {n} test problems, paired differences smaller than about {smallest:.2f} "
            "(80% power, 30% of problems answered differently) cannot be told from noise."
        )
        if not any(p is not None and p.significant for r in summary_test for p in (r.vs_seed, r.vs_task_arithmetic)):
            notes.append("No model differs significantly from the seed or from tuned task arithmetic on test.")
    return notes


def collect(run_dir: Path, top_k: int = 10) -> RunSummary:
    """Read everything the report shows from `run_dir`; missing parts give empty sections, never errors."""
    run = RunDir(Path(run_dir))
    config, config_notes = _read_config(run.config)
    everything: list[CandidateRecord] = []
    selected, below_seed, finished, experts, expert_notes = None, None, False, [], []
    if run.archive.is_file():  # opening an Archive would create an empty database in the run folder
        with Archive(run.archive) as archive:
            everything = archive.candidates(kind=None)
            selected, finished = archive.meta("selected"), bool(archive.meta("finished", False))
            below_seed = archive.meta("selected_below_seed")
            geometry = archive.meta(GEOMETRY_KEY)
            experts = expert_rows(geometry, archive.meta(HELD_OUT_KEY))
            # Warnings a reader needs before any merge score: experts that barely moved or moved alike.
            expert_notes = [f"Warning: {w}." for w in ExpertGeometry.from_json(geometry).warnings()] if geometry else []
    generated = [c for c in everything if c.kind == "generated"]
    slices = list(config.cascade.slices) if config else []
    if not slices:
        slices = sorted({c.dev.n for c in everything if c.dev is not None})

    iterations = sorted({c.iteration for c in generated})
    rows = [
        _iteration_row(i, [c for c in generated if c.iteration == i], slices, _dpo_metrics(run, i)) for i in iterations
    ]
    measured = [c for c in generated if _measured(c)]
    first = [c.dev.prefix(slices[0]) for c in measured] if slices else []
    references = [_row(c) for c in everything if c.kind == "reference"]
    reference_fingerprints = {c.fingerprint for c in everything if c.kind == "reference" and c.fingerprint}
    baselines = [_row(c) for c in everything if c.kind == "baseline"]
    top = [_row(c) for c in scores.ranked(measured)[:top_k]]
    tested = references + baselines + [_row(c) for c in generated if c.id == selected]
    test = _test_rows(tested)
    plan = Plan.load(run.plan)
    budget_notes = [] if plan is None else [f"Budget plan: {line}" for line in plan.describe()]
    return RunSummary(
        run_dir=str(run.root),
        task=config.task if config else None,
        slices=slices,
        iterations=rows,
        proposals=[
            row for i in iterations
            for row in _proposal_rows(i, [c for c in generated if c.iteration == i], slices, reference_fingerprints)
        ],
        references=references,
        baselines=baselines,
        baseline_evaluations=_baseline_evaluations(run, config.shared_dir if config else None),
        top=top,
        selected=selected,
        test=test,
        notes=config_notes + budget_notes + expert_notes + _notes(test, selected, finished, below_seed),
        scores_by_iteration={i: [c.dev.prefix(slices[0]).accuracy for c in measured if c.iteration == i] for i in iterations},
        evaluation_order=[(e.accuracy, *e.interval()) for e in first],
        experts=experts,
        arms=[row for i in iterations for row in _arm_rows(i, [c for c in generated if c.iteration == i], slices)],
        directions=[row for i in iterations for row in _direction_rows(i, [c for c in generated if c.iteration == i])],
    )


def _baseline_evaluations(run: RunDir, shared_dir: Path | None) -> int:
    shared = RunDir(run.root, shared_dir) if shared_dir else run
    try:
        data = json.loads(shared.baselines_summary.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return 0
    return int(data.get("dev_evaluations", 0)) if isinstance(data, dict) else 0


def summary_rows(run_dir: Path) -> list[IterationRow]:
    """Per-iteration rates and scores of the run in `run_dir`."""
    return collect(run_dir).iterations
