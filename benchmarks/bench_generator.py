"""Proposal modes at equal samples: `paper` at its best temperature against `evolve` with and without repair.

    python benchmarks/bench_generator.py [--seed NAME|FOLDER] [--samples 48] [--grid 0.5 0.7 0.9 1.2]
        [--max-new-tokens 320] [--repair-attempts 2] [--revise-repeats] [--parents 3] [--parent-pool 6]
        [--shared-parents 1]
        [--evolve-temperature T]
        [--stack-start] [--arms [paper+repair] [paper+ban] [paper+plan] [evolve] [evolve+repair] [evolve-cycle]
         [evolve+ban] [evolve+ban+repair] [evolve+plan] [evolve+plan+repair]] [--copy-ban 16] [--copy-penalty inf]
        [--copy-ban-tail 0] [--plan-temperature 1.0] [--sampling-seed 0]
        [--archive RUN/archive.sqlite | --parents-from BENCH.json
         | --experts E1 E2 E3 [--task gsm8k] [--parent-problems 10] [--data-dir D]]
        [--out runs/bench/bench_generator.json]

1. The plain `paper` prompt at every temperature of --grid, --samples replies each: its best temperature is the
   one with the most new functions (distinct executable ones that are not trivial; ties: the most executable).
   The grid is reported.
2. At that temperature (evolve: --evolve-temperature, if given), with the same sampling seed and the same number of generator replies (--samples):
   `evolve` (each sample's prompt shows its own --parents of the --parent-pool best scored ones, and one direction
   of change drawn by the bandit from what paid in the arm's earlier batches, as the loop asks an iteration at a
   time; `evolve-cycle`: the same parents, the directions in turn) and `evolve` with repair (a failed candidate's request is asked
   again with the sandbox's diagnosis, up to --repair-attempts times; every repair is one of the
   --samples replies, so the arms cost the same number of samples). With --stack-start these arms (and an extra
   `paper+stack`) start every reply with the list stacked (selfdev.generator.prompt.STACK_START). The `+ban` arms
   decode with a ban on copying the code their prompt shows (--copy-ban tokens in a row; a finite --copy-penalty
   lowers such tokens' logits instead; --copy-ban-tail K bans only the runs that end in a shown algorithm's last K
   lines that are not blank; selfdev.generator.copying). The `+plan` arms ask for one sentence on what the
   algorithm does differently before the code, draw it at --plan-temperature and the code after it at the arm's
   temperature (generator.plan_temperature; PlanSearch: a hot idea, a cool implementation).

Parents: from a finished run's archive (--archive), or the best --parent-pool an earlier bench scored
(--parents-from), else the bench scores its own pool (the known algorithms an evolve run starts from,
selfdev.generator.examples, and the distinct, non-trivial executable functions of the best paper temperature) on
the first --parent-problems dev problems of --task over --experts, with the loop's scorer.

Per arm: executable rate with its 95% Wilson interval; distinct fingerprints among executable candidates, and
per 100 samples, and how many of them are new; the share of trivial ones among the executable (a plain mean,
one expert alone, zeros, the prompt's own example: probed like candidates, equal fingerprints); sandbox failure statuses; generated tokens and seconds (sampling and
probing, the generator loaded once) per executable candidate; the most common failure reasons. `acceptance` compares evolve+repair with the best
paper setting on issue 19's bars. Results go to stdout (a table) and --out (JSON); every candidate (reply, status,
fingerprint) goes to --out's `.candidates.jsonl`, an arm at a time as each finishes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sandbox import SandboxLimits, SandboxWorker
from seeds import DEFAULT_SEED, resolve_model
from selfdev import scores
from selfdev.archive import Archive
from selfdev.config import GeneratorConfig
from selfdev.generator import directions
from selfdev.generator.prompt import ONE_SHOT, STACK_START, generator_messages
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.proposals import (
    evolve_prompts,
    needs_repair,
    prompt_json,
    ask_again,
    select_parents,
    trivial_fingerprints,
)
from selfdev.generator.sampler import generate, generator_backend
from selfdev.screen import Screen
from selfdev.stages import CandidateRecord, Sample, record_of

MERGE_SEED = 0
ARMS = (  # in order
    "paper+repair", "paper+ban", "paper+plan", "evolve", "evolve+repair", "evolve-cycle", "evolve+ban", "evolve+ban+repair",
    "evolve+plan", "evolve+plan+repair",
)
# The GeneratorConfig fields an arm decodes with (Arm's fields of the same names).
DECODE = ("reply_start", "copy_ban", "copy_penalty", "copy_ban_tail", "plan_temperature")
NUM_EXPERTS = 3  # the prompt's k (the embedded seed's experts); probes use SandboxLimits.probe_k task vectors


@dataclass
class Arm:
    """The replies one proposal setting drew, screened in the sandbox."""

    name: str
    temperature: float
    reply_start: str = ""  # the first lines of every reply, written for the generator (GeneratorConfig.reply_start)
    copy_ban: int = 0  # no reply repeats this many tokens in a row of the code its prompt shows (GeneratorConfig.copy_ban)
    copy_penalty: float = float("inf")  # what a token continuing such a run loses from its logit (GeneratorConfig.copy_penalty)
    copy_ban_tail: int = 0  # only runs ending in a shown algorithm's last this-many lines are banned (GeneratorConfig.copy_ban_tail)
    plan_temperature: float | None = None  # a plan drawn at this temperature before the code (GeneratorConfig.plan_temperature)
    known: dict[str, str] = field(default_factory=dict)  # fingerprint -> code of the functions its prompts show
    candidates: list[CandidateRecord] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0

    def summary(self, trivial: dict[str, str], shown: frozenset[str] = frozenset()) -> dict:
        """`shown`: fingerprints of the parents evolve shows; a copy of one is not new, though not trivial."""
        n = len(self.candidates)
        ran = [c for c in self.candidates if c.executable]
        distinct = {c.fingerprint for c in ran}
        failures: dict[str, int] = {}
        for c in self.candidates:
            if not c.executable:
                failures[c.status] = failures.get(c.status, 0) + 1
        rate = scores.rate(len(ran), n)
        per_exec = (lambda total: total / len(ran)) if ran else (lambda total: None)
        repairs = [c for c in self.candidates if c.proposal == "repair"]
        revisions = [c for c in self.candidates if c.proposal == "revise"]
        return {
            "arm": self.name,
            "temperature": self.temperature,
            # [tokens in a row, penalty, tail lines (0: all)] of the ban on copying what the prompt shows
            # (GeneratorConfig.copy_ban, copy_penalty, copy_ban_tail)
            "copy_ban": [self.copy_ban, self.copy_penalty, self.copy_ban_tail] if self.copy_ban else None,
            "plan_temperature": self.plan_temperature,  # None: the code alone, at `temperature`
            "samples": n,
            "executable": len(ran),
            "executable_rate": rate.value,
            "executable_ci": list(rate.ci),
            "distinct_fingerprints": len(distinct),
            "distinct_per_100": 100 * len(distinct) / n if n else 0.0,
            # Distinct functions that are none of the trivial ones: what discovery can actually score.
            "new_distinct": len(distinct - set(trivial) - shown),
            "new_per_100": 100 * len(distinct - set(trivial) - shown) / n if n else 0.0,
            "parent_copy_share": per_exec(sum(c.fingerprint in shown and c.fingerprint not in trivial for c in ran)),
            "trivial_share": per_exec(sum(c.fingerprint in trivial for c in ran)),  # None: nothing ran
            "trivial": sorted({trivial[c.fingerprint] for c in ran if c.fingerprint in trivial}),
            "failures": failures,
            # What the sandbox said most often: the policy refusals to allow safely or explain in the prompt.
            "top_reasons": Counter(f"{c.status}: {c.reason}" for c in self.candidates if not c.executable).most_common(8),
            "repairs": len(repairs),
            "repairs_executable": sum(c.executable for c in repairs),
            # Revisions of repeats (--revise-repeats) that ran and computed a function new to the arm.
            "revisions": len(revisions),
            "revisions_new": sum(map(paid_in(self, frozenset(trivial) | shown), revisions)),
            "tokens_per_executable": per_exec(self.tokens),
            "seconds_per_executable": per_exec(self.seconds),
        }


class Bench:
    def __init__(self, args: argparse.Namespace, backend, worker: SandboxWorker) -> None:
        self.args, self.backend, self.worker = args, backend, worker
        self.config = GeneratorConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
        self.screen = Screen(worker, merge_seed=MERGE_SEED)  # as the loop screens, without its real-parameter probes
        self.trivial = trivial_fingerprints(self.screen.probe, worker.limits.probe_k)
        # Counted as trivial in the tables, not in parent selection (task arithmetic is evolve's first parent): the
        # prompt's own example, which the loop recognises as the task arithmetic reference and never scores again.
        example = self.screen.probe(ONE_SHOT).fingerprint
        self.counted_trivial = {**self.trivial, example: "the prompt's example"}
        self.example = {example: ONE_SHOT}
        self.parents: dict[str, str] = {}  # fingerprint -> code of the parents evolve shows (set once they are known)
        # One short warm-up generation, so the first grid point does not pay for the first call's setup.
        warm = self.config.model_copy(update={"max_new_tokens": 16})
        generate(backend, [generator_messages(NUM_EXPERTS)], warm, temperature=1.0, seed=args.sampling_seed)

    def draw(
        self, arm: Arm, chats: list[list[dict]], proposal: str | list[str], seed: int,
        parents: list[CandidateRecord] | None = None,
    ):
        """Sample one reply per chat, probe each, add them to `arm`; returns the new candidates. `proposal`: their
        kind, or each one's."""
        kinds = [proposal] * len(chats) if isinstance(proposal, str) else proposal
        start = time.perf_counter()
        config = self.config.model_copy(update={key: getattr(arm, key) for key in DECODE})
        replies = generate(self.backend, chats, config, temperature=arm.temperature, seed=seed)
        new = []
        for i, (chat, (reply, tokens)) in enumerate(zip(chats, replies)):
            parent = parents[i] if parents else None
            sample = Sample(reply, prompt_json(chat), kinds[i], parent_id=None if parent is None else parent.id)
            c = record_of(0, len(arm.candidates), sample, self.screen.reply(reply)).with_id(len(arm.candidates))
            arm.candidates.append(c)
            arm.tokens += tokens
            new.append(c)
        arm.seconds += time.perf_counter() - start
        return new

    def run(self, name: str, temperature: float, prompts: Prompts, proposal: str, repair: bool, **decode) -> Arm:
        """--samples replies: fresh ones asked by `prompts` a batch at a time, and with `repair` up to
        --repair-attempts rounds of repairs of each batch's failures (with --revise-repeats, and revisions of its
        repeats), all within the same budget of samples. `decode`: the Arm's DECODE fields that differ from the
        default."""
        # What a reply may repeat besides the arm's earlier ones: in the loop, the references (the example, and in
        # evolve mode the known algorithms among the parents) are scored before any sample.
        known = {**self.example, **(self.parents if proposal == "evolve" else {})}
        arm, budget = Arm(name, temperature, known=known, **decode), self.args.samples
        batch_seed = self.args.sampling_seed  # the same seeds in every arm: fresh batch b draws with seed + 1000 * b
        while len(arm.candidates) < budget:
            batch = min(self.args.batch, budget - len(arm.candidates))
            failed = self.draw(arm, prompts(arm, batch_seed, batch), proposal, batch_seed)
            for round_ in range(1, (self.args.repair_attempts if repair else 0) + 1):
                revise = self.args.revise_repeats
                failed = [c for c in failed if needs_repair(c) or (revise and self.repeats(arm, c))]
                failed = failed[: budget - len(arm.candidates)]
                if not failed:
                    break
                kinds, chats = zip(*(ask_again(NUM_EXPERTS, c, self.original_code(arm, c)) for c in failed))
                failed = self.draw(arm, list(chats), list(kinds), batch_seed + round_, failed)
            batch_seed += 1000
        ran = sum(c.executable for c in arm.candidates)
        print(f"{name}: {ran}/{len(arm.candidates)} executable, {arm.seconds:.0f} s", flush=True)  # minutes an arm
        self.keep(arm)
        return arm

    @staticmethod
    def repeats(arm: Arm, c: CandidateRecord) -> bool:
        """The bench's `proposals.repeats`: `c` ran and computes a function its prompt showed or one an earlier reply
        of the arm computed (ids are positions in the arm)."""
        return c.executable and (
            c.fingerprint in arm.known or any(e.fingerprint == c.fingerprint for e in arm.candidates[: c.id])
        )

    @staticmethod
    def original_code(arm: Arm, c: CandidateRecord) -> str | None:
        """The code of the function `c` repeats, as its prompt shows it, else as the arm's first reply wrote it."""
        if c.fingerprint in arm.known:
            return arm.known[c.fingerprint]
        return next((e.code for e in arm.candidates[: c.id] if e.fingerprint == c.fingerprint), None)

    def keep(self, arm: Arm) -> None:
        """Append the arm's candidates to --out's `.candidates.jsonl` as soon as it is done: a crash later in the
        bench keeps every finished arm, and the replies behind the table can be read."""
        path = self.args.out.with_suffix(".candidates.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            for c in arm.candidates:
                row = {"arm": arm.name, "index": c.id, "proposal": c.proposal, "parent": c.parent_id,
                       "direction": directions.direction_of(c.prompt) if c.proposal == "evolve" else None,
                       "status": c.status, "reason": c.reason, "fingerprint": c.fingerprint, "reply": c.reply}
                f.write(json.dumps(row) + "\n")


# The prompts of an arm's next fresh batch: (the arm so far, the batch's sampling seed, its size) -> chats.
Prompts = Callable[[Arm, int, int], list[list[dict]]]


def paid_in(arm: Arm, excluded: frozenset[str]) -> Callable[[CandidateRecord], bool]:
    """The loop's reward of a direction (Proposer.paid) within one arm: the candidate ran and is the arm's first
    with a fingerprint that is not `excluded` (trivial merges, the parents shown)."""
    first: dict[str, int] = {}
    for c in arm.candidates:
        if c.executable:
            first.setdefault(c.fingerprint, c.id)
    return lambda c: directions.pays(c, lambda c: c.fingerprint in excluded or first[c.fingerprint] != c.id)


def evolve_batches(args: argparse.Namespace, parents: list[CandidateRecord], excluded: frozenset[str], bandit: bool) -> Prompts:
    """Evolve prompts a batch at a time, as the loop asks them an iteration at a time: fresh parents per batch
    seed, and each prompt's direction drawn by the bandit from what paid in the arm so far (`bandit`), or taken in
    turn across batches; the two see the same parents. An arm with a plan temperature is asked for a plan first."""

    def prompts(arm: Arm, seed: int, n: int) -> list[list[dict]]:
        if bandit:
            chosen = directions.choose(directions.records(arm.candidates, paid_in(arm, excluded)), n, seed)
        else:
            chosen = directions.in_turn(sum(c.proposal == "evolve" for c in arm.candidates), n)
        plan = arm.plan_temperature is not None
        return evolve_prompts(NUM_EXPERTS, parents, args.parents, n, seed, args.shared_parents, chosen, plan)

    return prompts


def best_paper(grid: list[Arm], trivial: dict[str, str]) -> Arm:
    """The grid point with the most new functions (distinct, executable, not trivial); ties: the most executable.

    Not the executable rate alone: at low temperature the seed mostly copies the prompt's example, which runs,
    and which a discovery run never scores (a control run at T 0.5 scored nothing new in two iterations).
    """

    def key(arm: Arm) -> tuple[int, int]:
        ran = [c for c in arm.candidates if c.executable]
        return len({c.fingerprint for c in ran} - set(trivial)), len(ran)

    return max(grid, key=key)


def parents_from_archive(path: Path, k: int, screen: Screen, trivial: dict[str, str]) -> list[CandidateRecord]:
    """The best `k` of a run's scored candidates, fingerprinted again by `screen`: the run's fingerprints include its
    real-parameter probes, so they would match neither the replies' (a copy of a parent) nor the trivial merges'."""
    with Archive(path) as archive:
        pool = [c for c in archive.candidates(kind=None) if c.code and c.dev is not None and c.duplicate_of is None]
    probed = [(c, screen.probe(c.code)) for c in pool]
    return select_parents([dataclasses.replace(c, fingerprint=d.fingerprint) for c, d in probed if d.ok], k, trivial)


def parents_from_bench(path: Path) -> list[CandidateRecord]:
    """The scored parents an earlier run of this bench wrote to its --out (their per-problem outcomes included).

    Raises ValueError, in one line, for a file that is not such an output (or one written before the outcomes were).
    """
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["parents"]
        return [
            CandidateRecord(
                0, i, "ok", code=r["code"], fingerprint=r["fingerprint"], id=i,
                dev=scores.Evaluation.from_json(r["evaluation"]),
            )
            for i, r in enumerate(rows)
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        why = f"not a bench_generator output with scored parents ({error!r})"
        raise ValueError(f"--parents-from {path}: {why}") from None


def scored_parents(args: argparse.Namespace, seed: str, pool: list[str], trivial: dict[str, str]) -> list[CandidateRecord]:
    """The known algorithms an evolve run starts from (task arithmetic, TIES, DARE, ...) and `pool` (code), scored on
    the first --parent-problems dev problems with the loop's scorer."""
    from evals.data import resolve_data_dir
    from evals.tasks import get_task
    from selfdev.config import BackendConfig, CascadeConfig
    from selfdev.scoring import ScorerSpec

    data_dir = resolve_data_dir(args.data_dir) if args.data_dir else None
    dev = get_task(args.task).examples("dev", data_dir, args.parent_problems)
    spec = ScorerSpec(
        seed=seed, experts=args.experts, filter="mlp", task=args.task, dev=dev,
        backend=BackendConfig(batch_size=args.batch_size), cascade=CascadeConfig(slices=[len(dev)]),
        sandbox=SandboxLimits(), merge_seed=MERGE_SEED,
    )
    parents = []
    with SandboxWorker(spec.sandbox) as worker:
        scorer = spec.scorer(worker)
        try:
            for i, code in enumerate([*EXAMPLES.values(), *pool]):
                probe = worker.probe(code, seed=MERGE_SEED)
                candidate = CandidateRecord(0, i, probe.status.value, code=code, fingerprint=probe.fingerprint, id=i)
                parents.append(candidate.scored("dev", scorer.cascade(code, None, full=True)))
        finally:
            scorer.inputs.close()
    return select_parents(parents, args.parent_pool, trivial)


def acceptance(paper: dict, evolved: dict) -> dict:
    """Issue 19's bars for evolve with repair against the best plain setting, at equal samples (None: undefined)."""

    def compare(key: str, test) -> bool | None:
        return None if paper[key] is None or evolved[key] is None else test(evolved[key], paper[key])

    return {
        "executable_rate_at_least_0.8": evolved["executable_rate"] >= 0.8,
        "distinct_per_100_at_least_2x": evolved["distinct_per_100"] >= 2 * paper["distinct_per_100"],
        "fewer_trivial": compare("trivial_share", lambda e, p: e < p),
        # Stricter than the bar: distinct functions that are neither trivial nor a copy of a shown parent.
        "new_per_100_at_least_2x": evolved["new_per_100"] >= 2 * paper["new_per_100"],
        "seconds_per_executable_at_most_1.5x": compare("seconds_per_executable", lambda e, p: e <= 1.5 * p),
        # Not a bar: whether the two executable rates differ beyond noise (unpaired: the prompts differ).
        "executable_against_paper": scores.rate_difference(
            evolved["executable"], evolved["samples"], paper["executable"], paper["samples"]
        ).describe(),
    }


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = [f"{'arm':<22}{'T':>5}{'n':>5}  {'executable [95% CI]':<24}{'distinct':>9}{'/100':>7}{'new':>5}{'trivial':>9}"
             f"{'copies':>8}{'tok/exec':>10}{'s/exec':>9}  failures"]
    for r in rows:
        ci = f"{r['executable_rate']:.2f} [{r['executable_ci'][0]:.2f}, {r['executable_ci'][1]:.2f}]"
        failures = ", ".join(f"{k} {v}" for k, v in sorted(r["failures"].items())) or "-"
        lines.append(
            f"{r['arm']:<22}{r['temperature']:>5.2f}{r['samples']:>5}  {ci:<24}{r['distinct_fingerprints']:>9}"
            f"{r['distinct_per_100']:>7.1f}{r['new_distinct']:>5}{_num(r['trivial_share'], 9, 2)}"
            f"{_num(r['parent_copy_share'], 8, 2)}{_num(r['tokens_per_executable'], 10, 0)}"
            f"{_num(r['seconds_per_executable'], 9, 2)}  {failures}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", default=DEFAULT_SEED, help="the generator (the embedded seed by default)")
    parser.add_argument("--samples", type=int, default=48, help="generator replies per arm and grid point")
    parser.add_argument("--batch", type=int, default=12, help="fresh samples per round (repairs follow each round)")
    parser.add_argument("--batch-size", type=int, default=12, help="sequences generated together")
    parser.add_argument("--grid", type=float, nargs="+", default=[0.5, 0.7, 0.9, 1.2])
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--repair-attempts", type=int, default=2)
    parser.add_argument(
        "--revise-repeats", action="store_true",
        help="in the repair rounds, also ask again for replies that ran but repeat a known function "
        "(GeneratorConfig.revise_repeats)",
    )
    parser.add_argument("--parents", type=int, default=3, help="parents shown in one evolve prompt")
    parser.add_argument("--parent-pool", type=int, default=6, help="the best scored algorithms prompts draw from")
    parser.add_argument(
        "--shared-parents", type=int, default=1,
        help="evolve samples in a row shown the same draw of parents (generator.shared_parents); their prompts share "
        "a prefix the generator reads once per batch of them (from --batch-size up)",
    )
    parser.add_argument(
        "--evolve-temperature", type=float,
        help="temperature of the evolve arms (default: the best paper temperature); parents anchor the code, so "
        "evolve may need more heat than the plain prompt to write anything but a copy",
    )
    parser.add_argument(
        "--stack-start", action="store_true",
        help="the arms after the grid start every reply with STACK_START (the list stacked first), as "
        "generator.reply_start does; the grid, the plain baseline, never does",
    )
    parser.add_argument(
        "--arms", nargs="*", choices=ARMS, default=["paper+repair", "evolve", "evolve+repair"],
        help="the arms after the grid (default: paper+repair, evolve, evolve+repair; evolve-cycle is the bandit's "
        "own control, the +ban arms ban copying what the prompt shows: --copy-ban); fewer, a shorter bench for a slow "
        "generator. Acceptance bars are computed for every evolve arm with repair; none at all: the grid alone, which "
        "needs no parents",
    )
    parser.add_argument(
        "--copy-ban", type=int, default=16,
        help="the +ban arms: no reply repeats this many tokens in a row of the code its prompt shows (evolve's parents, "
        "paper's example; generator.copy_ban)",
    )
    parser.add_argument(
        "--copy-penalty", type=float, default=float("inf"),
        help="the +ban arms: what a token continuing such a run loses from its logit (generator.copy_penalty; "
        "inf: banned)",
    )
    parser.add_argument(
        "--copy-ban-tail", type=int, default=0,
        help="the +ban arms: ban only the runs that end in the last this-many lines of an algorithm shown "
        "(generator.copy_ban_tail; 0: runs anywhere)",
    )
    parser.add_argument(
        "--plan-temperature", type=float, default=1.0,
        help="the +plan arms: the prompt asks for one sentence on what the algorithm does differently before the code, "
        "drawn at this temperature; the code follows at the arm's (generator.plan_temperature)",
    )
    parser.add_argument(
        "--sampling-seed", type=int, default=0,
        help="fresh batch b samples with this seed + 1000 b, in every arm; another seed is another draw of replies",
    )
    parser.add_argument("--archive", type=Path, help="a run's archive.sqlite to take evolve's parents from")
    parser.add_argument(
        "--parents-from", type=Path,
        help="an earlier bench's --out JSON: its scored parents, not scored again (scoring took 30 min on AVX2)",
    )
    parser.add_argument("--experts", nargs="+", help="expert folders, to score the bench's own parents")
    parser.add_argument("--task", default="gsm8k")
    parser.add_argument("--parent-problems", type=int, default=10)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/bench_generator.json"))
    args = parser.parse_args(argv)
    if any(t <= 0 for t in [*args.grid, args.plan_temperature, *([] if args.evolve_temperature is None else [args.evolve_temperature])]):
        parser.error("temperatures must be positive")
    if min(args.samples, args.batch, args.batch_size, args.parents, args.parent_pool, args.shared_parents, args.max_new_tokens) < 1:
        parser.error(
            "--samples, --batch, --batch-size, --parents, --parent-pool, --shared-parents and --max-new-tokens must be positive"
        )
    if args.copy_ban < 2:
        parser.error("--copy-ban must be 2 or more: a ban of 1 token would ban every token a parent uses")
    if not args.copy_penalty > 0:  # also nan
        parser.error("--copy-penalty must be positive")
    if args.copy_ban_tail < 0:
        parser.error("--copy-ban-tail must be 0 (runs anywhere) or more lines")
    if args.revise_repeats and args.repair_attempts < 1:
        parser.error("--revise-repeats needs --repair-attempts of 1 or more: revisions are asked in the repair rounds")
    if args.archive is not None and args.parents_from is not None:
        parser.error("pass one source of parents: --archive or --parents-from")
    evolving = any(arm.startswith("evolve") for arm in args.arms)
    if args.archive is not None and not args.archive.is_file():
        parser.error(f"--archive {args.archive}: no such file (a run's archive.sqlite)")
    if args.parents_from is not None and not evolving:
        parser.error("--parents-from is for the evolve arms, and none was asked for (--arms)")
    if args.parents_from is not None:
        try:
            reused = parents_from_bench(args.parents_from)[: args.parent_pool]  # written best first
        except ValueError as error:
            parser.error(str(error))
    if evolving and args.archive is None and args.parents_from is None and not args.experts:
        parser.error(
            "evolve needs scored parents: pass --archive (a run's archive), --parents-from (an earlier bench's JSON) "
            "or --experts (to score its own)"
        )

    seed = resolve_model(args.seed)
    args.out.with_suffix(".candidates.jsonl").unlink(missing_ok=True)
    limits = SandboxLimits(spare_worker=False)
    with SandboxWorker(limits) as worker, generator_backend(seed, None, GeneratorConfig(batch_size=args.batch_size)) as backend:
        bench = Bench(args, backend, worker)
        if evolving and args.archive is not None:  # before the grid: an archive without parents fails in seconds
            parents = parents_from_archive(args.archive, args.parent_pool, bench.screen, bench.trivial)
            if not parents:
                parser.error(f"--archive {args.archive}: no scored, distinct, non-trivial candidate runs in the sandbox")
        def paper_chats(arm: Arm, seed: int, n: int) -> list[list[dict]]:
            return [generator_messages(NUM_EXPERTS, arm.plan_temperature is not None)] * n

        grid = [bench.run(f"paper T={t:g}", t, paper_chats, "paper", repair=False) for t in args.grid]
        paper = best_paper(grid, bench.counted_trivial)
        if not evolving:
            parents = []
        elif args.parents_from is not None:
            parents = reused
        elif args.archive is not None:
            pass  # read before the grid
        else:
            pool = {c.fingerprint: c.code for c in paper.candidates if c.executable and c.fingerprint not in bench.trivial}
            parents = scored_parents(args, seed, list(pool.values())[: args.parent_pool], bench.trivial)
        # Only the evolve arms were shown the parents; the paper arms' own finds are among them, and are new there.
        shown = frozenset(p.fingerprint for p in parents if p.fingerprint)
        excluded = shown | frozenset(bench.counted_trivial)
        bench.parents = {p.fingerprint: p.code for p in parents if p.fingerprint}
        evolve_chats = evolve_batches(args, parents, excluded, bandit=True) if parents else paper_chats
        cycle_chats = evolve_batches(args, parents, excluded, bandit=False) if parents else paper_chats
        evolve_t = paper.temperature if args.evolve_temperature is None else args.evolve_temperature
        start, tag = (STACK_START, "+stack") if args.stack_start else ("", "")
        arms = [bench.run("paper+stack", paper.temperature, paper_chats, "paper", False, reply_start=start)] if tag else []
        for name in (arm for arm in ARMS if arm in args.arms):
            proposal = name.split("+")[0].removesuffix("-cycle")
            temperature = paper.temperature if proposal == "paper" else evolve_t
            chats = {"paper": paper_chats, "evolve": evolve_chats, "evolve-cycle": cycle_chats}[name.split("+")[0]]
            decode = {"reply_start": start}
            if "+ban" in name:
                decode.update(copy_ban=args.copy_ban, copy_penalty=args.copy_penalty, copy_ban_tail=args.copy_ban_tail)
            if "+plan" in name:  # the code at the arm's temperature, the plan before it at --plan-temperature
                decode.update(plan_temperature=args.plan_temperature)
            arms.append(bench.run(name + tag, temperature, chats, proposal, repair=name.endswith("+repair"), **decode))
    grid_rows = [a.summary(bench.counted_trivial) for a in grid]
    rows = [paper.summary(bench.counted_trivial)] + [
        a.summary(bench.counted_trivial, shown if a.name.startswith("evolve") else frozenset()) for a in arms
    ]
    results = {
        "seed": str(args.seed),
        "cpu": torch.backends.cpu.get_cpu_capability(),  # what the seconds per executable candidate were timed on
        "samples_per_arm": args.samples,
        "sampling_seed": args.sampling_seed,
        "grid": grid_rows,
        "best_paper_temperature": paper.temperature,
        "revise_repeats": args.revise_repeats,
        "parents": [
            {"code": p.code, "dev": p.dev.describe(), "fingerprint": p.fingerprint, "evaluation": p.dev.to_json()}
            for p in parents
        ],
        "arms": rows,
        # Issue 19's bars, for each evolve arm with repair against the best paper setting; none without such an arm.
        "acceptance": {r["arm"]: acceptance(rows[0], r) for r in rows if r["arm"].startswith("evolve") and "+repair" in r["arm"]},
    }
    print(f"CPU {results['cpu']}; temperature grid (paper):\n" + table(grid_rows))
    print(f"\nbest paper temperature {paper.temperature:g}, evolve at {evolve_t:g}, {args.samples} samples per arm:\n"
          + table(rows))
    for name, bars in results["acceptance"].items():
        print(f"acceptance ({name} vs best paper):", json.dumps(bars))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return results


if __name__ == "__main__":
    main()
