"""A wall-clock budget for a discovery run: measure this machine, size the run to fit, keep to it.

A new run starts with a short measurement (`selfdev.throughput.measure`): the seed evaluates a few
search-dev problems in the discovery evaluation's dtype, and again in the
debate's dtype where that differs (bf16 is 3-15x float32 on some CPUs and 1/16
on others). `plan` estimates every stage from those two figures and scales the
run's problem counts (search-dev slices, selection-dev, test) by one factor so
the estimate fills the budget; the plan is printed before anything else runs
and saved as plan.json in the run folder, where a resumed run reads it back.
While the run goes, `Deadline.affords` skips discovery iterations that would
not leave time for selection and test. The report states what was cut and what
the cut costs in the smallest difference the run can still detect.

The stage costs are in units of one measured evaluation; their constants were
fitted to the stage times of timed `make run`s (see the constants' comments).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from evals.atomic import write_json_atomic
from selfdev.config import DiscoveryConfig
from selfdev.generator.sampler import PLAN_TOKENS
from selfdev.merging.baseline_results import GridWork
from selfdev.preferences import most_pairs
from selfdev.scores import detectable_difference
from selfdev.throughput import Throughput

# -- the cost model ---------------------------------------------------------------------------
PHASE_SECONDS = 30.0  # a scoring phase stages the task vectors and loads an evaluation model
CANDIDATE_SECONDS = 6.0  # probe in the sandbox, merge, weight swap
SLOW_MERGES = {"ties": 100.0, "dare_ties": 100.0, "breadcrumbs": 100.0, "dare_linear": 100.0}  # mergekit, 2 cores
MERGE_SECONDS = 10.0  # other mergekit methods
# The debate: one problem is agents x rounds sampled answers of up to 384 tokens, round 2's prompts carry the
# others' answers. Its cost is linear in answers (no fixed share: sampled answers run long and fill every
# batch): 1.75 probe problems per answer, measured over the seed's, the training and the experts' debates of
# two runs (AVX512: 216 answers in 1087 s, 1.93 each; AVX2: 84 answers in 1195 s, 1.50 each).
DEBATE_PER_ANSWER = 1.75
# The experts' LoRA SFTs, per training problem of the debate: the embedded recipe's three took 217 s (AVX512, 14
# examples from 24 training problems) where one probe took 40 s, 5.5 probes. Scaled by the training problems, as a
# cut debate labels fewer examples: with 8 (a fresh make run, 2026-12-03, AVX512 without AMX, a probe 64 s) two
# SFTs of 1 example took 22 s each, where the recipe's 5.5 probes had estimated 352 s.
SFT_PROBES_PER_PROBLEM = 5.5 / 24
# A DPO of the generator: loading it, then its optimizer steps (one pair each, selfdev.config.DPOSettings.steps),
# in probes scaled by the generator's size. benchmarks/bench_dpo.py, a 2-core AVX512 EPYC with avx512_bf16 and
# without AMX, the 0.5B seed as generator, the paper prompt's pairs (724 prompt tokens, replies of 71-196): a step 62 s in bf16
# autocast (87 s in float32) where the probe took 55 s, 1.13 probes; the load 0.11 (the 1.5B coder, 2.82x the
# parameters: 141 s, 1.02 probes once scaled). A DPO costed as one constant
# (1.5 probes, fitted where it trained 6 steps) planned 1.4 min for the 18 steps of 9 pairs, 19 min here. Not yet
# measured with AMX, where that constant's fit (6 steps in 54 s) suggests about 0.25 probes a step: such a machine
# is planned with DPO time to spare, which the deadline hands to the next iteration's samples.
DPO_STEP_PROBES = 1.13
DPO_LOAD_PROBES = 0.11
SAMPLE_PER_PROBLEM = 1.25  # a 320-token reply costs about one evaluated problem's generation
# Share of replies that run and are new, so the cascade scores them: an upper bound. At the embedded default
# (T 0.8) bench_generator saw 3 new functions in 24 replies; most that run copy the prompt's example and reuse
# its score. At T 1.2 it ran 0-4 of 12.
EXECUTABLE_RATE = 0.25
EXPERT_LOAD_SECONDS = 60.0


@dataclass(frozen=True)
class Sizes:
    """What the plan sizes: problem counts of every split, samples, iterations, baselines' grid, expert training."""

    slices: list[int]
    selection: int
    test: int
    samples: int
    iterations: int
    baselines: dict = field(default_factory=dict)  # method -> parameter -> values
    debate_overrides: dict = field(default_factory=dict)  # laid over the experts' debate config
    dpo_steps: int | None = None  # at most this many steps per DPO (dpo.max_steps); None: the pairs' epochs


@dataclass
class Plan:
    budget_minutes: float
    throughput: Throughput
    requested: Sizes
    planned: Sizes
    scale: float
    estimate: dict[str, float]  # stage -> seconds
    experts_cached: bool
    started_at: float = field(default_factory=time.time)

    @property
    def total_seconds(self) -> float:
        return sum(self.estimate.values())

    def cuts(self) -> list[str]:
        """What the plan changed against the config, and what it costs in detectable difference."""
        out = []
        r, p = self.requested, self.planned
        for label, before, after in (
            ("search-dev problems", r.slices[-1], p.slices[-1]),
            ("selection-dev problems", r.selection, p.selection),
            ("test problems", r.test, p.test),
        ):
            if before != after:
                out.append(
                    f"{label}: {before} -> {after} (smallest detectable paired difference "
                    f"{detectable_difference(before):.2f} -> {detectable_difference(after):.2f})"
                )
        if r.samples != p.samples:
            out.append(f"samples per iteration: {r.samples} -> {p.samples}")
        if r.dpo_steps != p.dpo_steps and p.iterations > 1:  # one iteration has no DPO to cap
            out.append(f"DPO steps: at most {p.dpo_steps} a DPO (a random subset of its pairs)")
        if r.iterations != p.iterations:
            out.append(f"iterations: {r.iterations} -> {p.iterations}")
        if r.baselines != p.baselines:
            out.append(f"baselines' grid: {_points(r.baselines)} -> {_points(p.baselines)} points (middle values kept)")
        if r.debate_overrides != p.debate_overrides:
            out.append(f"expert training: {p.debate_overrides}")
        return out

    def describe(self) -> list[str]:
        t = self.throughput
        lines = [
            f"budget: {self.budget_minutes:.0f} min; this machine ({t.cpu_capability}) evaluated {t.problems} problems "
            f"in {t.eval_seconds:.0f} s ({t.eval_dtype}, discovery) and {t.debate_seconds:.0f} s ({t.debate_dtype}, debate)",
            f"plan: problem counts x{self.scale:.2f}: search-dev slices {self.planned.slices}, selection-dev "
            f"{self.planned.selection}, test {self.planned.test}; {self.planned.iterations} iteration{'s' * (self.planned.iterations != 1)} of "
            f"{self.planned.samples} samples",
            "estimate: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in self.estimate.items() if v > 0)
            + f" = {self.total_seconds / 60:.1f} min",
        ]
        cuts = self.cuts()
        # "changed", not "cut": where problems are cheap to add, the plan raises their counts.
        return lines + ([f"changed: {c}" for c in cuts] if cuts else ["nothing changed: the config fits the budget"])

    def save(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "Plan | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        return cls(
            **{
                **data,
                "throughput": Throughput(**data["throughput"]),
                "requested": Sizes(**data["requested"]),
                "planned": Sizes(**data["planned"]),
            }
        )

    def apply(self, config: "DiscoveryConfig") -> "DiscoveryConfig":
        """`config` with the planned sizes."""
        return sized(config, self.planned)


# -- estimating -------------------------------------------------------------------------------


def sized(config: "DiscoveryConfig", p: Sizes) -> "DiscoveryConfig":
    """`config` with the sizes `p`."""
    return config.model_copy(
        update={
            "iterations": p.iterations,
            "cascade": config.cascade.model_copy(update={"slices": list(p.slices)}),
            "selection": config.selection.model_copy(update={"problems": p.selection}),
            "test": config.test.model_copy(update={"limit": p.test}),
            "generator": config.generator.model_copy(update={"samples_per_iteration": p.samples}),
            "dpo": config.dpo.model_copy(update={"max_steps": p.dpo_steps}),
            "baselines": p.baselines,
            "experts": config.experts.model_copy(update={"debate_overrides": p.debate_overrides}),
        }
    )


def requested_sizes(config: "DiscoveryConfig", test_size: int) -> Sizes:
    return Sizes(
        slices=list(config.cascade.slices),
        selection=config.selection.problems,
        test=config.test.limit or test_size,
        samples=config.generator.samples_per_iteration,
        iterations=config.iterations,
        baselines=config.baselines,
        debate_overrides=config.experts.debate_overrides,
        dpo_steps=config.dpo.max_steps,
    )


def scaled(sizes: Sizes, factor: float, *, dev_size: int, test_size: int) -> Sizes:
    """Problem counts times `factor` (at least 5 problems a slice, increasing, within the splits)."""
    slices: list[int] = []
    for n in sizes.slices:
        slices.append(max(5, round(n * factor), slices[-1] + 1 if slices else 0))
    selection = max(5, round(sizes.selection * factor))
    if slices[-1] + selection > dev_size:  # search-dev and selection-dev share the dev split
        shrink = dev_size / (slices[-1] + selection)
        slices = sorted({max(1, int(n * shrink)) for n in slices})
        selection = dev_size - slices[-1]
    test = min(test_size, max(10, round(sizes.test * factor)))
    return replace(sizes, slices=slices, selection=selection, test=test)


# Whether the experts that a debate config with these overrides trains are built already.
ExpertsCached = Callable[[dict], bool]
# What the baselines stage at these sizes still has to evaluate, the rest being in the shared folder's log.
BaselinesWork = Callable[[Sizes], GridWork]


def all_baselines(sizes: Sizes) -> GridWork:
    """Nothing of the baselines' grid is in a log: every point is evaluated."""
    return GridWork.everything(sizes.baselines, sizes.slices[-1], sizes.test)


def estimate(
    config: "DiscoveryConfig", sizes: Sizes, t: Throughput, *, experts_cached: ExpertsCached,
    baselines_work: BaselinesWork = all_baselines,
) -> dict[str, float]:
    """Seconds per stage of a run of `config` at `sizes` on a machine with throughput `t`."""
    return {
        "experts": EXPERT_LOAD_SECONDS if experts_cached(sizes.debate_overrides)
        else _experts(config, sizes.debate_overrides, t),
        "baselines": _baselines(baselines_work(sizes), t),
        "references": PHASE_SECONDS + 2 * (CANDIDATE_SECONDS + _cascade(sizes.slices, t)),
        "iterations": sizes.iterations * iteration_seconds(config, sizes, t),
        "dpo": sum(dpo_seconds(t, dpo_steps(config, sizes, i)) for i in range(sizes.iterations - 1)),
        # The finalists and the unmerged seed, the floor a pick must reach (scores.pick).
        "selection": PHASE_SECONDS + (config.selection.finalists + 1) * (CANDIDATE_SECONDS + t.eval(sizes.selection)),
        "test": PHASE_SECONDS + 3 * (CANDIDATE_SECONDS + t.eval(sizes.test)),
    }


def dpo_seconds(t: Throughput, steps: int) -> float:
    """A DPO of `steps` optimizer steps."""
    return (DPO_LOAD_PROBES + steps * DPO_STEP_PROBES) * t.eval_seconds * t.generator_scale


def within_dpo_share(config: "DiscoveryConfig", sizes: Sizes, t: Throughput, seconds: float) -> Sizes:
    """`sizes` with a cap on each DPO's steps (at least 2) such that the run's DPOs take at most `seconds`."""
    dpos = sizes.iterations - 1
    if dpos <= 0 or sum(dpo_seconds(t, dpo_steps(config, sizes, i)) for i in range(dpos)) <= seconds:
        return sizes
    steps = int((seconds / dpos / (t.eval_seconds * t.generator_scale) - DPO_LOAD_PROBES) / DPO_STEP_PROBES)
    return replace(sizes, dpo_steps=max(2, min(steps, sizes.dpo_steps or steps)))


def dpo_steps(config: "DiscoveryConfig", sizes: Sizes, iteration: int) -> int:
    """The steps of the DPO after iteration `iteration` at `sizes`: on the most pairs its samples can give."""
    settings = config.dpo.model_copy(update={"max_steps": sizes.dpo_steps})
    return settings.steps(most_pairs(sizes.samples, iteration, config.preferences))


def iteration_seconds(config: "DiscoveryConfig", sizes: Sizes, t: Throughput) -> float:
    """Sampling and the cascade of one iteration (candidates that run go on to the last slice unless cut).

    A control arm samples as many again (after the first iteration; counted in every one, to be safe); each
    repair round samples again for the candidates that failed.
    """
    g = config.generator
    # A GSM8K answer's token limit; a plan (sampler.PLAN_TOKENS) is decoded first, from the same prompt.
    tokens = (g.max_new_tokens + (PLAN_TOKENS if g.plan_temperature is not None else 0)) / 256
    failing, replies = 1 - EXECUTABLE_RATE, 1.0
    for _ in range(g.repair_attempts):
        replies += failing
        failing *= 1 - EXECUTABLE_RATE
    replies *= sizes.samples * (2 if g.control else 1)
    sampling = sampling_seconds(replies, SAMPLE_PER_PROBLEM * tokens, g.batch_size, t)
    executable = replies * EXECUTABLE_RATE
    return sampling + PHASE_SECONDS + replies * 1.0 + executable * (CANDIDATE_SECONDS + _cascade(sizes.slices, t))


def sampling_seconds(replies: float, units_per_reply: float, batch_size: int, t: Throughput) -> float:
    """Sampling `replies` (each `units_per_reply` evaluated problems' worth of generation), `batch_size` replies
    at a time (generator.batch_size): every generator batch pays the fixed part once. Not the evaluation's
    batches (backend.batch_size, 64): 48 replies of 320 tokens are 75 problems' worth, which would be one batch
    of 64 and a rest, where the generator runs four batches of 12."""
    whole = replace(t, batch_size=None)  # one generator batch is one evaluation-sized call
    batches, rest = divmod(replies, batch_size)
    return (batches * whole.eval(batch_size * units_per_reply) + whole.eval(rest * units_per_reply)) * t.generator_scale


def _cascade(slices: list[int], t: Throughput) -> float:
    # Only a slice's new problems are generated when a candidate goes on.
    return sum(t.eval(b - a) for a, b in zip([0] + slices, slices))


def _points(baselines: dict) -> int:
    return len(GridWork.everything(baselines, 0, 0).dev)


def _baselines(work: GridWork, t: Throughput) -> float:
    """Every grid point with problems to evaluate is merged and scored on them; so is each method's tuned point on
    test (the run's seed reference stands for the unmerged row). Nothing to evaluate: no model is loaded."""
    evaluations = [(m, n) for m, n in work.dev if n > 0] + [(m, n) for m, n in work.test.items() if n > 0]
    if not evaluations:
        return 0.0
    return PHASE_SECONDS + sum(SLOW_MERGES.get(m, MERGE_SECONDS) + t.eval(n) for m, n in evaluations)


def _experts(config: "DiscoveryConfig", overrides: dict, t: Throughput) -> float:
    if config.experts.debate is None:
        return EXPERT_LOAD_SECONDS
    from seeds.debate import load_debate_config

    debate = load_debate_config(config.experts.debate, overrides)
    agents, rounds = debate.debate.agents, debate.debate.rounds
    train = sum(source.limit for source in debate.train)
    held_out = debate.evaluation.limit if debate.evaluation.experts or debate.evaluation.system else 0
    # The seed's held-out debate, the training debate, one round of the experts' single answers.
    answers = (held_out + train) * agents * rounds + held_out * agents
    per_answer = DEBATE_PER_ANSWER * t.debate_seconds / t.problems
    return answers * per_answer + SFT_PROBES_PER_PROBLEM * train * t.eval_seconds + EXPERT_LOAD_SECONDS


# -- planning ---------------------------------------------------------------------------------


def _middle(values: list) -> list:
    return [values[len(values) // 2]]


def _cuts(config: "DiscoveryConfig") -> list[tuple[str, Callable[[Sizes], Sizes]]]:
    """What the plan gives up, in order, when the smallest problem counts do not fit."""

    def one_point(s: Sizes) -> Sizes:
        return replace(s, baselines={m: {k: _middle(v) for k, v in g.items()} for m, g in s.baselines.items()})

    def fewer_debate_problems(s: Sizes) -> Sizes:
        if config.experts.debate is None:
            return s
        from seeds.debate import load_debate_config

        debate = load_debate_config(config.experts.debate, s.debate_overrides)
        train = [{**p.model_dump(), "limit": max(4, p.limit // 2)} for p in debate.train]
        held_out = {"limit": max(4, debate.evaluation.limit // 2)}
        return replace(s, debate_overrides={**s.debate_overrides, "train": train, "evaluation": held_out})

    def fewer_dpo_steps(s: Sizes) -> Sizes:
        return replace(s, dpo_steps=max(2, dpo_steps(config, s, 0) // 2))

    def fewer_samples(s: Sizes) -> Sizes:
        return replace(s, samples=max(4, s.samples // 2))

    def one_iteration(s: Sizes) -> Sizes:
        return replace(s, iterations=1)

    return [("baselines", one_point), ("experts", fewer_debate_problems), ("experts", fewer_debate_problems),
            ("dpo", fewer_dpo_steps), ("dpo", fewer_dpo_steps), ("samples", fewer_samples),
            ("iterations", one_iteration)]


def plan(
    config: "DiscoveryConfig", t: Throughput, *, dev_size: int, test_size: int, experts_cached: ExpertsCached,
    baselines_work: BaselinesWork = all_baselines,
) -> Plan:
    """The largest scale of the problem counts (within min/max_scale) whose estimate fits `fill` of the budget.

    When even the smallest does not fit, `_cuts` are made one after another until it does (or none is left).
    Whether the experts are built is asked of every cut's training settings: a run after one that cut its
    experts finds them cached at the cut settings and spends the time on discovery instead. So is what of the
    baselines' grid is in the shared log: a second run evaluates only the problems its larger slices add.
    """
    budget = config.budget
    requested = requested_sizes(config, test_size)
    target = budget.fill * budget.minutes * 60

    def total(sizes: Sizes) -> float:
        return sum(estimate(config, sizes, t, experts_cached=experts_cached, baselines_work=baselines_work).values())

    def largest(base: Sizes) -> tuple[float, Sizes]:
        lo, hi = budget.min_scale, budget.max_scale
        if total(scaled(base, hi, dev_size=dev_size, test_size=test_size)) <= target:
            return hi, scaled(base, hi, dev_size=dev_size, test_size=test_size)
        for _ in range(30):  # bisection on the scale: the estimate grows with it
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if total(scaled(base, mid, dev_size=dev_size, test_size=test_size)) <= target else (lo, mid)
        return lo, scaled(base, lo, dev_size=dev_size, test_size=test_size)

    base = within_dpo_share(config, requested, t, budget.dpo_share * budget.minutes * 60)
    factor, sizes = largest(base)
    for _, cut in _cuts(config):
        if total(sizes) <= target:
            break
        base = cut(base)
        factor, sizes = largest(base)
    final = estimate(config, sizes, t, experts_cached=experts_cached, baselines_work=baselines_work)
    return Plan(budget.minutes, t, requested, sizes, factor, final, experts_cached(sizes.debate_overrides))


@dataclass
class Deadline:
    """Keeps a running plan to its budget: sizes each iteration to the time left, and starts one only if selection
    and test still fit after it.

    The plan's iteration estimate can be far off (a fresh make run, AVX512: 11.4 min estimated, 5.6 taken), so an
    iteration's samples are sized when it starts, from the seconds a sample took in this run's finished iterations
    (sampling, repairs, screening, scoring; the plan's estimate before any): raised from the plan's count up to the
    config's where the time left allows, never cut below the plan's (`affords_iteration` guards the end).
    """

    plan: Plan
    clock: Callable[[], float] = time.time
    margin: float = 0.0  # seconds of the budget an iteration's sizing leaves unplanned, as the plan did (budget.fill)
    spent: list[tuple[int, float]] = field(default_factory=list)  # (replies requested, seconds) per finished iteration

    def left(self) -> float:
        return self.plan.budget_minutes * 60 - (self.clock() - self.plan.started_at)

    def affords_iteration(self, arms: int = 1, dpo_steps: int = 0) -> bool:
        """Whether the DPO of `dpo_steps` steps before another iteration and that iteration at the plan's samples
        (of `arms` arms) still leave time for selection and test."""
        e = self.plan.estimate
        iteration = arms * self.plan.planned.samples * self.seconds_per_reply()
        dpo = dpo_seconds(self.plan.throughput, dpo_steps) if dpo_steps else 0.0
        return self.left() >= dpo + iteration + e["selection"] + e["test"]

    def record_iteration(self, replies: int, seconds: float) -> None:
        """An iteration of this run finished: `replies` fresh samples (every arm) took `seconds` in all."""
        if replies > 0:
            self.spent.append((replies, seconds))

    def dpo_steps_that_fit(self, arms: int = 1) -> int:
        """The most DPO steps that still leave time for another iteration (of `arms` arms), selection and test; 0:
        none does. A run whose deadline raised its samples over the plan's can have more pairs than the plan capped."""
        e = self.plan.estimate
        spare = self.left() - arms * self.plan.planned.samples * self.seconds_per_reply() - e["selection"] - e["test"]
        unit = self.plan.throughput.eval_seconds * self.plan.throughput.generator_scale
        return max(0, math.floor((spare / unit - DPO_LOAD_PROBES) / DPO_STEP_PROBES))

    def dpo_estimate(self) -> float:
        """The plan's seconds for one DPO (the most its pairs may take)."""
        return self.plan.estimate.get("dpo", 0.0) / max(1, self.plan.planned.iterations - 1)

    def seconds_per_reply(self) -> float:
        """Measured over this run's finished iterations, else the plan's estimate."""
        if self.spent:
            return sum(s for _, s in self.spent) / sum(n for n, _ in self.spent)
        return iteration_estimate(self.plan) / self.plan.planned.samples

    def samples_for(self, iteration: int, arms: int = 1) -> int:
        """Samples per arm for iteration `iteration` (from 0) of `arms` arms: what fits in its share of the time
        left after the later DPOs, selection and test, between the plan's count and the config's."""
        p, e = self.plan.planned, self.plan.estimate
        remaining = max(1, p.iterations - iteration)
        reserve = e["selection"] + e["test"] + (remaining - 1) * self.dpo_estimate()
        share = (self.left() - self.margin - reserve) / remaining
        fits = int(share // (arms * self.seconds_per_reply()))
        return max(p.samples, min(self.plan.requested.samples, fits))


def iteration_estimate(plan: Plan) -> float:
    """The plan's seconds for one iteration's sampling and scoring (its DPO not included)."""
    return plan.estimate["iterations"] / plan.planned.iterations
