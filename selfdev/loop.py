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

This process screens (extract, probe, dedupe) and records; merging and
evaluating run here, or on Ray actors when `distributed.enabled` (see
selfdev.distributed). Every candidate is in the archive the moment it
finishes; a killed run resumes from it (samples and adapters are written
atomically), losing only what was in flight.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import time
from pathlib import Path
from typing import Callable, Iterator

from evals.data import resolve_data_dir
from evals.tasks import Example, get_task
from sandbox import SandboxWorker, TaskVectorSet, choose_probe_tensors
from seeds import resolve_model
from seeds.task_vectors import TaskVectors
from selfdev import budget, scores, throughput
from selfdev.archive import Archive, Candidate
from selfdev.budget import Deadline
from selfdev.candidates import CandidateQueue, Job, LocalScoring, Scoring, ScorerSpec, Screen, run_jobs
from selfdev.config import DiscoveryConfig
from selfdev.dpo import fitting_pairs, train_dpo
from selfdev.errors import UserError
from selfdev.experts_source import ExpertsSource, resolve_experts
from selfdev.generator.prompt import ONE_SHOT, generator_messages
from selfdev.generator.sampler import Sample
from selfdev.isolated import run_isolated
from selfdev.merging.baseline_results import read_tuned_baselines
from selfdev.preferences import select_pairs
from selfdev.progress import LoopProgress
from selfdev.proposing import Proposer
from selfdev.run_dir import RunDir

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
        # Checked first: a selection slice that does not fit the dev split is a config mistake, found before hours of work.
        self.selection = self.held_out_examples("dev", self.config.cascade.slices[-1], self.config.selection.problems)
        # Experts and baselines run in processes of their own: the memory they used is gone when they end.
        experts = run_isolated(
            resolve_experts, self.config.experts, self.config.seed, filter=self.config.filter, data_dir=self.data_dir,
            task=self.config.task, log=self.log,
        )
        self.prompt = json.dumps(generator_messages(len(experts)))
        for key, value in (("seed", self.config.seed), ("experts", experts), ("task", self.config.task)):
            self.archive.set_meta(key, value)
        self.run_baselines(experts)
        self.spec = self.scorer_spec(experts)
        with SandboxWorker(self.config.sandbox) as worker, self.actors() as actors:
            self.screen = Screen(
                worker, self.archive, merge_seed=self.config.random_seed, probe_set=self.probe_set(worker, experts)
            )
            with self.scoring(actors) as scoring:
                self.score_references(scoring)
            for it in range(self.config.iterations):
                replies = self.sample(it, num_experts=len(experts))
                with self.scoring(actors) as scoring:
                    self.evaluate_iteration(it, replies, scoring)
                if it == self.config.iterations - 1:
                    break
                if self.deadline is not None and not self.deadline.affords_iteration():
                    self.log(
                        f"budget: {self.deadline.left() / 60:.1f} min left, not enough for another iteration before "
                        f"selection and test; stopping after iteration {it}"
                    )
                    self.archive.set_meta("budget_stopped_after", it)
                    break
                self.train_generator(it)
            with self.scoring(actors) as scoring:
                self.select(scoring)
                self.evaluate_test(scoring)
        self.archive.set_meta("finished", True)

    # -- stages -------------------------------------------------------------------------------

    def run_baselines(self, experts: list[str]) -> None:
        if not self.config.baselines:
            return
        from selfdev.merging.baselines import run_baselines
        from selfdev.config import BaselinesConfig

        self.log("baselines: tuning mergekit methods on the first dev slice (cached across runs)")
        run_isolated(
            run_baselines,
            BaselinesConfig(
                seed=self.seed_path,
                experts=ExpertsSource(models=experts),
                filter=self.config.filter,
                task=self.config.task,
                dev_limit=self.config.cascade.slices[-1],  # the search-dev problems discovery uses
                test_limit=self.config.test.limit,
                data_dir=str(self.data_dir) if self.data_dir else None,
                output=self.run.baselines,
                random_seed=self.config.random_seed,
                backend=self.config.backend,
                methods=self.config.baselines,
                include_seed=False,  # the run's seed reference is the same model on the same problems
            ),
            log=self.log,
        )
        if not self.archive.baselines():
            for row in read_tuned_baselines(self.run.baselines):
                self.archive.add(row)

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

    @contextlib.contextmanager
    def actors(self) -> Iterator[Scoring | None]:
        """The Ray actors, started once for the whole run; None when this process evaluates."""
        if not self.config.distributed.enabled:
            yield None
            return
        try:
            from selfdev.distributed import actor_pool
        except ImportError as e:
            raise UserError(f"distributed.enabled needs Ray ({e}): pip install '.[dist]'") from None
        with actor_pool(self.config.distributed, self.spec, self.log) as pool:
            yield pool

    @contextlib.contextmanager
    def scoring(self, actors: Scoring | None) -> Iterator[Scoring]:
        """Where one phase merges and evaluates: the actors, or this process.

        Here, the phase gets its own sandbox worker, holding the task vectors in
        shared memory, and an evaluation model; both go when it ends, so the
        generator and DPO have the memory (re-staging costs seconds a phase).
        """
        if actors is not None:
            yield actors
            return
        with SandboxWorker(self.spec.sandbox) as worker:
            local = LocalScoring(self.spec.scorer(worker))
            try:
                yield local
            finally:
                local.close()
                gc.collect()

    def score_references(self, scoring: Scoring) -> None:
        """The seed itself (a candidate without code) and task arithmetic (the one-shot example), on every dev slice."""
        done = {c.name for c in self.archive.references()}
        jobs = []
        if "seed" not in done:
            seed = Candidate(iteration=-1, sample_index=0, status="ok", kind="reference", name="seed")
            jobs.append(Job(seed, full=True))
        if "task_arithmetic" not in done:
            ta = Candidate(iteration=-1, sample_index=1, status="ok", kind="reference", name="task_arithmetic", code=ONE_SHOT)
            if self.screen(ta, dedupe=False):
                jobs.append(Job(ta, full=True))
            else:
                self.archive.add(ta)
        with LoopProgress.simple("references on search-dev", len(jobs)) as advance:
            for reference in run_jobs(scoring, jobs):
                self.archive.add(reference)
                score = "–" if reference.dev is None else reference.dev.describe()
                self.log(f"reference {reference.name}: search-dev {score} ({reference.status})")
                advance(1)

    @functools.cached_property
    def proposer(self) -> Proposer:
        """The prompts, arms and repairs of the configured proposal mode (made once the sandbox worker runs)."""
        proposer = Proposer(
            self.config.generator, self.generator_path, self.run, self.archive, seed=self.config.random_seed, log=self.log
        )
        if self.config.generator.mode == "evolve":
            proposer.know_trivial(self.screen.probe, self.config.sandbox.probe_k)
        return proposer

    def sample(self, iteration: int, *, num_experts: int) -> list[Sample]:
        return self.proposer.samples(iteration, num_experts)

    def evaluate_iteration(self, iteration: int, replies: list[Sample], scoring: Scoring) -> None:
        """The samples, then up to `generator.repair_attempts` rounds of repairs of the ones that failed."""
        finished = self.archive.finished_indices(iteration)
        queue = CandidateQueue(self.screen, scoring, self.archive)
        width = len(replies)
        with LoopProgress(iteration, width, self.archive) as progress:
            todo = list(enumerate(replies))
            for round_ in range(self.config.generator.repair_attempts + 1):
                if round_:
                    todo = self.proposer.repairs(iteration, round_, width, len(self.spec.experts))
                    progress.grow(len([i for i, _ in todo if i not in finished]))
                for index, sample in todo:
                    if index not in finished:
                        progress.running(index)
                        # Screened here; merged, scored and recorded as workers finish.
                        for done in queue.put(self.candidate(iteration, index, sample)):
                            progress.finished(done)
                for done in queue.drain():  # a round's failures are known before the next round repairs them
                    progress.finished(done)

    def candidate(self, iteration: int, index: int, sample: Sample | str) -> Candidate:
        sample = Sample(sample) if isinstance(sample, str) else sample
        adapter = self.run.latest_adapter(iteration) if sample.arm == "main" else None
        return Candidate(
            iteration=iteration,
            sample_index=index,
            status="pending",
            generator=adapter.parent.name if adapter else "",
            prompt=sample.prompt or self.prompt,
            proposal=sample.proposal,
            arm=sample.arm,
            parent_id=sample.parent_id,
            reply=sample.reply,
        )

    def train_generator(self, iteration: int) -> None:
        if (self.run.adapter(iteration) / "adapter_config.json").is_file():
            return
        preferences = select_pairs(self.archive, iteration, self.config.preferences)
        if not preferences.pairs:
            self.log(f"iteration {iteration}: no preference pairs (no score differences); the generator is unchanged")
            return
        pairs = fitting_pairs(self.generator_path, preferences.pairs, self.config.dpo.max_length)
        if len(pairs) < len(preferences.pairs):
            self.log(
                f"iteration {iteration}: {len(preferences.pairs) - len(pairs)} of {len(preferences.pairs)} pairs "
                f"dropped: their prompt leaves no room for a reply within dpo.max_length {self.config.dpo.max_length}"
            )
        if not pairs:
            return
        self.log(
            f"iteration {iteration}: DPO on {len(pairs)} pairs "
            f"({preferences.rejected_failures} of {preferences.rejected} rejected replies are failures)"
        )
        metrics = train_dpo(
            self.generator_path, pairs, self.run.adapter(iteration), self.config.dpo,
            self.run.latest_adapter(iteration), extra_metrics=preferences.metrics(),
        )
        self.log(f"iteration {iteration}: DPO loss {metrics['train_loss']:.4f} over {metrics['steps']} steps")

    def select(self, scoring: Scoring) -> None:
        """Re-score the search's finalists on selection-dev, problems the search never used, and pick one."""
        self.archive.set_meta("selection_split", self.task.split_info(self.selection).to_dict())
        finalists = self.archive.top(self.config.selection.finalists)
        self.score_held_out(scoring, "selection", self.selection, [c for c in finalists if c.selection is None])
        selected = scores.pick(self.archive.get(c.id) for c in finalists)
        self.archive.set_meta("selected", None if selected is None else selected.id)
        if selected is None:
            self.log("selection: no algorithm was scored on the selection slice; nothing goes to test")
        else:
            self.log(f"selected #{selected.id}: selection {selected.selection.describe()}, search {selected.dev.describe()}")

    def evaluate_test(self, scoring: Scoring) -> None:
        """Test scores only now, once, after the pick: the selected algorithm and the references."""
        selected = self.archive.meta("selected")
        pool = self.archive.references() + ([self.archive.get(selected)] if selected is not None else [])
        test = self.task.examples("test", self.data_dir, self.config.test.limit)
        self.archive.set_meta("test_split", self.task.split_info(test).to_dict())
        self.score_held_out(scoring, "test", test, [c for c in pool if c.test is None])

    def score_held_out(self, scoring: Scoring, split: str, examples: list[Example], todo: list[Candidate]) -> None:
        if not todo:
            return
        with LoopProgress.simple(f"{split} evaluation", len(todo)) as advance:
            for c in run_jobs(scoring, [Job(c, held_out=(split, examples)) for c in todo]):
                evaluation = getattr(c, split)
                if evaluation is None:
                    self.log(f"candidate {c.id} has no {split} score: {c.reason}")
                else:
                    self.archive.set_evaluation(c.id, split, evaluation)
                    self.log(f"{split} {c.name or '#' + str(c.id)}: {evaluation.describe()}")
                advance(1)


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
            config, measured, dev_size=sizes["dev"], test_size=sizes["test"], experts_cached=throughput.experts_cached(config)
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
    return plan.apply(config), budget.Deadline(plan)
