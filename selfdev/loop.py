"""`selfdev discover`: the Self-Developing loop.

    experts -> task vectors -> baselines, references (seed, task arithmetic)
    for each iteration:
        sample merge functions from the generator (paper or evolve prompt; with a control arm: also without DPO)
        for each reply: extract -> sandbox probe -> dedupe -> merge -> cascade on search-dev -> archive
        repair rounds: failed code and the sandbox's diagnosis -> a fixed version -> the same way (selfdev.proposing)
        DPO pairs (top 3% vs bottom 10%, plus earlier iterations' best) -> train the generator's LoRA
    re-score the top finalists on selection-dev (fresh problems) -> pick one
    test the pick and the references, once -> report

Search-dev, selection-dev and test are disjoint; the baselines are tuned on the
search-dev problems and tested on the same test problems as the pick.

This process screens (extract, gate, probe: selfdev.screen), queues and
records (selfdev.candidates); merging and evaluating run here, or on Ray
actors when `distributed.enabled` (selfdev.scoring, selfdev.distributed). A
candidate's stages are immutable values (selfdev.stages). Every candidate is
in the archive the moment it finishes; a killed run resumes from it (samples
and adapters are written atomically and indexed in the archive), losing only
what was in flight.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable

from evals.data import resolve_data_dir
from evals.errors import EvalsError
from evals.tasks import Example, get_task
from sandbox import SandboxWorker, TaskVectorSet, choose_probe_tensors
from seeds import resolve_model
from seeds.errors import SeedError
from seeds.task_vectors import TaskVectors
from selfdev import budget, scores, throughput
from selfdev.archive import Archive
from selfdev.budget import Deadline
from selfdev.candidates import CandidateQueue, Executor, HeldOutJob, Recorder, ReferenceJob, run_jobs
from selfdev.config import DiscoveryConfig
from selfdev.dpo import fitting_pairs, train_dpo
from selfdev.errors import UserError
from selfdev.experts_record import record_experts
from selfdev.experts_source import ExpertsSource, resolve_experts
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.prompt import ONE_SHOT
from selfdev.isolated import run_isolated
from selfdev.merging.baseline_results import GridWork, read_tuned_baselines
from selfdev.preferences import Preferences, select_pairs
from selfdev.progress import LoopProgress
from selfdev.proposing import Proposer
from selfdev.run_dir import RunDir
from selfdev.scoring import ScorerSpec, executors
from selfdev.screen import Screen
from selfdev.stages import CandidateRecord, Sample, record_of, reference

Log = Callable[[str], None]


class Discovery:
    def __init__(
        self, config: DiscoveryConfig, run: RunDir, *, data_dir: Path | None = None, log: Log = print,
        deadline: Deadline | None = None,
    ) -> None:
        self.config, self.run, self.log, self.deadline = config, run, log, deadline
        self.task = get_task(config.task)
        self.data_dir = resolve_data_dir(config.data_dir) if config.data_dir else data_dir
        self.seed_path = resolve_model(config.seed)
        self.generator_path = resolve_model(config.generator.model or config.seed)
        self.archive = Archive(run.archive)

    # -- the algorithm box --------------------------------------------------------------------

    def run_all(self) -> None:
        config, archive = self.config, self.archive
        # Checked first: a selection slice that does not fit the dev split is a config mistake, found before hours of work.
        selection = self.held_out_examples("dev", config.cascade.slices[-1], config.selection.problems)
        # Experts and baselines run in processes of their own: the memory they used is gone when they end.
        experts = run_isolated(
            resolve_experts, config.experts, config.seed, filter=config.filter, data_dir=self.data_dir,
            task=config.task, log=self.log,
        )
        for key, value in (("seed", config.seed), ("experts", experts), ("task", config.task)):
            archive.set_meta(key, value)
        for expert in experts:
            archive.index("expert", self.run.relative(expert))
        record_experts(archive, self.seed_path, experts, config.filter, self.log)
        recorder = Recorder(archive)  # the archive's single writer from here on; keeps the cascade's bar
        self.run_baselines(experts, recorder)
        spec = self.scorer_spec(experts)
        with SandboxWorker(config.sandbox) as worker, executors(config.distributed, spec, self.log) as phase:
            screen = Screen(worker, merge_seed=config.random_seed, probe_set=self.probe_set(worker, experts))
            proposer = self.proposer(screen)
            with phase() as executor:
                self.score_references(executor, screen, recorder)
            for it in range(config.iterations):
                started, fresh = time.time(), not self.run.samples(it).exists()
                samples = proposer.samples(it, len(experts), self.sample_count(it, proposer) if fresh else None)
                self.index_samples(self.run.samples(it), it, samples)
                with phase() as executor:
                    self.evaluate_iteration(it, samples, screen, proposer, CandidateQueue(executor, recorder), len(experts))
                if fresh and self.deadline is not None:  # a resumed iteration's time would not be a sample's cost
                    self.deadline.record_iteration(len(samples), time.time() - started)
                if it == config.iterations - 1:
                    break
                arms = 2 if config.generator.control else 1  # the next iteration's, if DPO makes an adapter
                preferences = self.preference_pairs(it)
                steps = config.dpo.steps(len(preferences.pairs)) if preferences.pairs else 0
                if self.deadline is not None and steps > (fit := self.deadline.dpo_steps_that_fit(arms)):
                    self.log(f"budget: iteration {it}: DPO of {fit} steps instead of {steps}, what the time left affords")
                    steps = fit
                if self.deadline is not None and not self.deadline.affords_iteration(arms, steps):
                    self.log(
                        f"budget: {self.deadline.left() / 60:.1f} min left, not enough for another iteration before "
                        f"selection and test; stopping after iteration {it}"
                    )
                    archive.set_meta("budget_stopped_after", it)
                    break
                self.train_generator(it, preferences, steps)
            with phase() as executor:
                self.select(executor, selection)
                self.evaluate_test(executor)
        archive.set_meta("finished", True)

    # -- stages -------------------------------------------------------------------------------

    def sample_count(self, iteration: int, proposer: Proposer) -> int:
        """Samples per arm of an iteration about to be sampled: the config's, raised by a budget's deadline to what
        the time left affords (budget.Deadline.samples_for)."""
        n = self.config.generator.samples_per_iteration
        if self.deadline is None:
            return n
        sized = self.deadline.samples_for(iteration, len(proposer.arms(iteration)))
        if sized != n:
            how = "measured" if self.deadline.spent else "estimated"
            self.log(
                f"budget: iteration {iteration}: {sized} samples instead of the plan's {n} "
                f"({self.deadline.seconds_per_reply():.0f} s a sample {how}, {self.deadline.left() / 60:.1f} min left)"
            )
        return sized

    def run_baselines(self, experts: list[str], recorder: Recorder) -> None:
        if not self.config.baselines:
            return
        from selfdev.merging.baselines import run_baselines

        self.log("baselines: tuning mergekit methods on the search-dev problems (cached across runs, problem by problem)")
        run_isolated(
            run_baselines, baselines_config(self.config, self.seed_path, experts, self.data_dir, self.run.baselines),
            log=self.log,
        )
        self.archive.index("baselines", self.run.relative(self.run.baselines), methods=sorted(self.config.baselines))
        if not self.archive.baselines():
            for row in read_tuned_baselines(self.run.baselines):
                recorder.add(row)

    def probe_set(self, worker: SandboxWorker, experts: list[str]) -> TaskVectorSet:
        """The task vectors of a few real parameters, staged once for every probe of the run (the same each resume)."""
        tv = TaskVectors(self.seed_path, experts, self.config.filter)
        names = choose_probe_tensors(tv.specs(), limit=2)
        return worker.load_task_vectors({name: tv.vectors(name) for name in names})

    def held_out_examples(self, split: str, skip: int, count: int | None) -> list[Example]:
        """`count` problems of `split` after its first `skip` (None: all of them); refuses a split too small."""
        examples = self.task.examples(split, self.data_dir, None if count is None else skip + count)
        if count is not None and len(examples) < skip + count:
            raise UserError(
                f"{self.config.task} {split} has {len(examples)} problems; the search's {skip} plus "
                f"{count} selection problems do not fit: lower cascade.slices or selection.problems"
            )
        return examples[skip:]

    def scorer_spec(self, experts: list[str]) -> ScorerSpec:
        dev = self.task.examples("dev", self.data_dir, self.config.cascade.slices[-1])
        if len(dev) < self.config.cascade.slices[-1]:
            raise UserError(f"{self.config.task} dev has {len(dev)} problems, fewer than cascade.slices' last")
        self.archive.set_meta("dev_split", self.task.split_info(dev).to_dict())
        return ScorerSpec(
            seed=self.seed_path,
            experts=experts,
            filter=self.config.filter,
            task=self.config.task,
            dev=dev,
            backend=self.config.backend,
            cascade=self.config.cascade,
            sandbox=self.config.sandbox,
            merge_seed=self.config.random_seed,
        )

    def score_references(self, executor: Executor, screen: Screen, recorder: Recorder) -> None:
        """The seed itself (a candidate without code) and task arithmetic (the one-shot example), on every dev slice;
        in `evolve` mode also the other known algorithms its first prompts show (selfdev.generator.examples)."""
        done = {c.name for c in self.archive.references()}
        jobs = []
        if "seed" not in done:
            jobs.append(ReferenceJob(reference(0, "seed")))
        examples = EXAMPLES if self.config.generator.mode == "evolve" else {"task_arithmetic": ONE_SHOT}
        for index, (name, code) in enumerate(examples.items(), 1):
            if name in done:
                continue
            screening = screen.code(code)
            if screening.passed:
                jobs.append(ReferenceJob(reference(index, name, screening), screening.checked))
            else:
                recorder.add(reference(index, name, screening))
        with LoopProgress.simple("references on search-dev", len(jobs)) as advance:
            for finished in run_jobs(executor, jobs):
                row = recorder.add(finished.record)
                score = "–" if row.dev is None else row.dev.describe()
                self.log(f"reference {row.name}: search-dev {score} ({row.status})")
                advance(1)

    def proposer(self, screen: Screen) -> Proposer:
        """The prompts, arms and repairs of the configured proposal mode."""
        proposer = Proposer(
            self.config.generator, self.generator_path, self.run, self.archive, seed=self.config.random_seed, log=self.log
        )
        if self.config.generator.mode == "evolve":
            proposer.know_trivial(screen.probe, self.config.sandbox.probe_k)
        return proposer

    def index_samples(self, path: Path, iteration: int, samples: list) -> None:
        self.archive.index("samples", self.run.relative(path), iteration=iteration, count=len(samples))

    def evaluate_iteration(
        self, iteration: int, samples: list[Sample], screen: Screen, proposer: Proposer, queue: CandidateQueue,
        num_experts: int,
    ) -> None:
        """The samples, then up to `generator.repair_attempts` rounds of repairs of the ones that failed.

        Each sample is screened here and recorded, or queued for a worker, at once; merged, scored and recorded as
        workers finish. A round's failures are all recorded before the next round repairs them.
        """
        finished = self.archive.finished_indices(iteration)
        adapter = self.run.latest_adapter(iteration)
        width = len(samples)
        with LoopProgress(iteration, width, self.archive) as progress:
            todo = list(enumerate(samples))
            for round_ in range(self.config.generator.repair_attempts + 1):
                if round_:
                    todo = proposer.repairs(iteration, round_, width, num_experts)
                    self.index_samples(self.run.repairs(iteration, round_), iteration, todo)
                    progress.grow(len([i for i, _ in todo if i not in finished]))
                for index, sample in todo:
                    if index in finished:
                        continue
                    progress.running(index)
                    screening = screen.reply(sample.reply)
                    generator = adapter.parent.name if adapter is not None and sample.arm == "main" else ""
                    record = record_of(iteration, index, sample, screening, generator=generator)
                    for done in queue.put(record, screening.checked):
                        progress.finished(done)
                for done in queue.drain():
                    progress.finished(done)

    def preference_pairs(self, iteration: int) -> Preferences:
        """The pairs the DPO after `iteration` trains on (none when its adapter exists: a resumed run)."""
        if (self.run.adapter(iteration) / "adapter_config.json").is_file():
            return Preferences([], 0, 0)
        preferences = select_pairs(self.archive, iteration, self.config.preferences)
        if not preferences.pairs:
            self.log(f"iteration {iteration}: no preference pairs (no score differences); the generator is unchanged")
            return preferences
        pairs = fitting_pairs(self.generator_path, preferences.pairs, self.config.dpo.max_length)
        if len(pairs) < len(preferences.pairs):
            self.log(
                f"iteration {iteration}: {len(preferences.pairs) - len(pairs)} of {len(preferences.pairs)} pairs "
                f"dropped: their prompt leaves no room for a reply within dpo.max_length {self.config.dpo.max_length}"
            )
        return replace(preferences, pairs=pairs)

    def train_generator(self, iteration: int, preferences: Preferences, steps: int) -> None:
        """DPO on `preferences` for `steps` optimizer steps (at most: a random subset of the pairs when fewer than
        their epochs take)."""
        pairs, settings = preferences.pairs, self.config.dpo.model_copy(update={"max_steps": steps or None})
        if not pairs or not steps:
            return
        self.log(
            f"iteration {iteration}: DPO on {len(pairs)} pairs, {steps} steps "
            f"({preferences.rejected_failures} of {preferences.rejected} rejected replies are failures)"
        )
        metrics = train_dpo(
            self.generator_path, pairs, self.run.adapter(iteration), settings,
            self.run.latest_adapter(iteration), extra_metrics=preferences.metrics(),
        )
        self.archive.index(
            "adapter", self.run.relative(self.run.adapter(iteration)), iteration=iteration,
            **{k: v for k, v in metrics.items() if k != "log"},
        )
        self.log(f"iteration {iteration}: DPO loss {metrics['train_loss']:.4f} over {metrics['steps']} steps")

    def select(self, executor: Executor, selection: list[Example]) -> None:
        """Re-score the search's finalists and the unmerged seed on selection-dev, problems the search never used,
        and pick one: the best finalist, unless the seed scored more than it there (`scores.pick`'s floor)."""
        self.archive.set_meta("selection_split", self.task.split_info(selection).to_dict())
        finalists = self.archive.top(self.config.selection.finalists)
        seed = [r for r in self.archive.references() if r.name == "seed"][:1] if finalists else []
        self.score_held_out(executor, "selection", selection, [c for c in finalists + seed if c.selection is None])
        finalists, seed = ([self.archive.get(c.id) for c in group] for group in (finalists, seed))
        selected = scores.pick(finalists, floor=seed[0] if seed else None)
        self.archive.set_meta("selected", None if selected is None else selected.id)
        best = scores.pick(finalists)
        below = selected is None and best is not None
        self.archive.set_meta("selected_below_seed", best.id if below else None)  # the report's note says why
        if below:
            self.log(
                f"selection: the best finalist #{best.id} ({best.selection.describe()}) scored below the unmerged seed "
                f"({seed[0].selection.describe()}) on selection-dev; nothing goes to test"
            )
        elif selected is None:
            self.log("selection: no algorithm was scored on the selection slice; nothing goes to test")
        else:
            self.log(f"selected #{selected.id}: selection {selected.selection.describe()}, search {selected.dev.describe()}")

    def evaluate_test(self, executor: Executor) -> None:
        """Test scores only now, once, after the pick: the selected algorithm and the references."""
        selected = self.archive.meta("selected")
        pool = self.archive.references() + ([self.archive.get(selected)] if selected is not None else [])
        test = self.task.examples("test", self.data_dir, self.config.test.limit)
        self.archive.set_meta("test_split", self.task.split_info(test).to_dict())
        self.score_held_out(executor, "test", test, [c for c in pool if c.test is None])

    def score_held_out(self, executor: Executor, split: str, examples: list[Example], todo: list[CandidateRecord]) -> None:
        if not todo:
            return
        with LoopProgress.simple(f"{split} evaluation", len(todo)) as advance:
            for finished in run_jobs(executor, [HeldOutJob(c, split, examples) for c in todo]):
                c, evaluation = finished.job.record, finished.scored.evaluation
                if evaluation is None:
                    self.log(f"candidate {c.id} has no {split} score: {finished.scored.reason}")
                else:
                    self.archive.set_evaluation(c.id, split, evaluation)
                    self.log(f"{split} {c.name or '#' + str(c.id)}: {evaluation.describe()}")
                advance(1)


def baselines_config(config: DiscoveryConfig, seed: str, experts: list[str], data_dir: Path | None, output: Path):
    """The `selfdev baselines` run that a discovery run of `config` makes over its `experts`."""
    from selfdev.config import BaselinesConfig

    return BaselinesConfig(
        seed=seed,
        experts=ExpertsSource(models=experts),
        filter=config.filter,
        task=config.task,
        dev_limit=config.cascade.slices[-1],  # the search-dev problems discovery uses
        test_limit=config.test.limit,
        data_dir=str(data_dir) if data_dir else None,
        output=output,
        random_seed=config.random_seed,
        backend=config.backend,
        methods=config.baselines,
        include_seed=False,  # the run's seed reference is the same model on the same problems
    )


def baselines_work(config: DiscoveryConfig, output: Path, data_dir: Path | None, log: Log = print) -> budget.BaselinesWork:
    """What the baselines stage of `config` at given sizes would still evaluate, from the log in `output`: the
    plan costs only that. Everything where there is no log, or the experts are not built yet (their folders are not
    known), or the log cannot be read against them: the plan is an estimate and errs on the costly side."""
    from selfdev.merging.baselines import pending

    seed, known = str(resolve_model(config.seed)), {}

    def work(sizes: budget.Sizes) -> GridWork:
        if not sizes.baselines or not (output / "results.jsonl").is_file():
            return budget.all_baselines(sizes)
        key = json.dumps([sizes.slices[-1], sizes.test, sizes.baselines, sizes.debate_overrides], sort_keys=True)
        if key not in known:  # the plan's bisection asks for the same sizes many times
            try:
                experts = throughput.expert_folders(config, sizes.debate_overrides)
                known[key] = budget.all_baselines(sizes) if experts is None else pending(
                    baselines_config(budget.sized(config, sizes), seed, experts, data_dir, output)
                )
            except (SeedError, EvalsError, UserError, OSError, ValueError, TypeError, KeyError) as e:
                log(f"budget: the baselines' log in {output} is not used for the plan ({type(e).__name__}: {e})")
                known[key] = budget.all_baselines(sizes)
        return known[key]

    return work


def discover(config: DiscoveryConfig, out: Path, *, resume: bool = False, data_dir: Path | None = None, log: Log = print) -> RunDir:
    # Paths are recorded absolute, so a resume or the report finds them from anywhere.
    if config.shared_dir is not None:
        config = config.model_copy(update={"shared_dir": config.shared_dir.resolve()})
    config = config.model_copy(update={"experts": config.experts.absolute()})
    run = RunDir(out, config.shared_dir)
    if run.archive.exists() and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not run.archive.exists():
        raise UserError(f"nothing to resume: {run.archive} does not exist")
    out.mkdir(parents=True, exist_ok=True)
    deadline = None
    if config.budget.minutes is not None:
        config, deadline = _keep_to_budget(config, run, resume=resume, data_dir=data_dir, log=log)
    if not run.config.exists():
        config.dump(run.config)
    discovery = Discovery(config, run, data_dir=data_dir, log=log, deadline=deadline)
    for kind, path in (("config", run.config), ("plan", run.plan)):
        if path.exists():
            discovery.archive.index(kind, run.relative(path))
    try:
        discovery.run_all()
    finally:
        discovery.archive.close()
    return run


def _keep_to_budget(
    config: DiscoveryConfig, run: RunDir, *, resume: bool, data_dir: Path | None, log: Log
) -> tuple[DiscoveryConfig, Deadline | None]:
    """The config sized to its budget by a plan made now (a new run) or read back (a resumed one)."""
    plan = budget.Plan.load(run.plan)
    if plan is None and resume:
        log("budget: this run was started without a plan; it goes on as configured")
        return config, None
    if plan is None:
        started = time.time()
        log(f"budget: measuring this machine on {config.budget.probe_problems} search-dev problems")
        seed = str(resolve_model(config.seed))
        measured = run_isolated(throughput.measure, config, seed, resolve_data_dir(config.data_dir) or data_dir, log=log)
        sizes = get_task(config.task).split_sizes
        plan = budget.plan(
            config, measured, dev_size=sizes["dev"], test_size=sizes["test"],
            experts_cached=partial(throughput.experts_cached, config),
            # The data folder as the run's own stages resolve it (Discovery.data_dir), so both read the same problems.
            baselines_work=baselines_work(
                config, run.baselines, resolve_data_dir(config.data_dir) if config.data_dir else data_dir, log
            ),
        )
        plan.started_at = started
        plan.save(run.plan)
    else:
        log(f"budget: keeping the plan in {run.plan}")
        if run.archive.exists():  # the time spent before a crash counts, the time it lay dead does not
            with Archive(run.archive) as archive:
                last = max((c.created_at for c in archive.candidates(kind=None)), default=plan.started_at)
            plan.started_at = time.time() - (last - plan.started_at)
    for line in plan.describe():
        log(line)
    margin = (1 - config.budget.fill) * plan.budget_minutes * 60
    return plan.apply(config), budget.Deadline(plan, margin=margin)
