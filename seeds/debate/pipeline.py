"""`build_experts`: one seed in, N finetuned generators and N critics out, with metrics; resumable by stage.

Per iteration l: debate the training problems (saved after every round),
build each agent's datasets, finetune each agent. Then evaluate on the held-out
slice and write the manifest the merge stage reads. Every stage's output is
written atomically; a stage whose output exists is loaded, never redone, so a
killed run resumes from its last finished stage.

Run folder::

    config.yaml                       the resolved config (training fields must match to resume)
    iter-<l>/debate.jsonl             transcripts (debate.partial.jsonl while rounds are played)
    iter-<l>/datasets/<role>-<i>.jsonl, counts.json
    iter-<l>/<role>-<i>/              finetuned agent (HF folder); <role>-<i>.skipped.json if it had no data
    eval/<task>-<split>-<offset>-<limit>-<hash>/
                                      per evaluation setting: seed debate, experts' answers, system debate on the
                                      held-out slice, settings.json, metrics.json
    timings.json, experts.json
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from evals.backends.base import GenerationBackend
from evals.backends.registry import backend_name
from evals.data import resolve_data_dir
from evals.tasks import get_task
from evals.tasks.base import Example, Task
from evals.atomic import read_jsonl, write_json_atomic, write_jsonl_atomic, write_text_atomic
from seeds.debate.config import ROLES, DebateConfig, DebateConfigError, DebateSettings, EvalSettings
from seeds.debate.datasets import build_datasets, read_dataset, write_datasets
from seeds.debate.engine import AgentModels, run_debate, start_records
from seeds.debate.finetune import finetune
from seeds.debate.metrics import debate_summary, load_embedder, print_metrics
from seeds.debate.models import ModelPool
from seeds.debate.transcript import DebateRecord
from seeds.embedded import cache_root
from seeds.geometry import expert_geometry
from seeds.resolve import resolve_model

Log = Callable[[str], None]
# The paper merges MLP weights; the embedded LoRA trains every linear layer.
GEOMETRY_FILTERS = ("mlp", "all-linear")
Problems = list[tuple[Task, Example]]


@dataclass
class ExpertsManifest:
    """What the merge stage needs: the seed and the expert folders handed to it."""

    seed: str
    experts: list[str]
    generators: list[str]
    critics: list[str]
    untrained: list[str]  # agents that had no examples and stayed their base model
    metrics: str

    def write(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "ExpertsManifest":
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def _digest(data: object, length: int) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:length]


class RunFolder:
    def __init__(self, root: Path, evaluation: EvalSettings) -> None:
        self.root = root
        self.config = root / "config.yaml"
        # One folder per held-out evaluation setting: a quick check by `make run` never clobbers a fuller one.
        ev = evaluation
        self.eval = root / "eval" / f"{ev.task}-{ev.split}-{ev.offset}-{ev.limit}-{_digest(ev.model_dump(mode='json'), 6)}"
        self.metrics = self.eval / "metrics.json"
        self.timings = root / "timings.json"
        self.manifest = root / "experts.json"

    def iteration(self, level: int) -> Path:
        return self.root / f"iter-{level}"

    def agent(self, level: int, role: str, agent: int) -> Path:
        return self.iteration(level) / f"{role}-{agent}"

    def record_time(self, stage: str, seconds: float) -> None:
        timings = json.loads(self.timings.read_text()) if self.timings.is_file() else {}
        timings[stage] = round(seconds, 1)
        write_json_atomic(self.timings, timings)


def held_out_metrics(experts: Sequence[str]) -> dict | None:
    """The metrics `build_experts` wrote for exactly these expert folders, or None (not debate experts)."""
    roots = {Path(e).parent.parent for e in experts}
    if len(roots) != 1:
        return None
    path = next(iter(roots)) / "experts.json"
    if not path.is_file():
        return None
    manifest = ExpertsManifest.load(path)
    if [str(Path(e)) for e in manifest.experts] != [str(Path(e)) for e in experts] or not Path(manifest.metrics).is_file():
        return None
    return json.loads(Path(manifest.metrics).read_text(encoding="utf-8"))


def default_out_dir(config: DebateConfig) -> Path:
    """The cache folder of `config`'s experts, keyed by what decides them: `selfdev experts` writes there by
    default and discovery and baselines (`experts: {debate: FILE}`) look there, so each reuses the others' work."""
    return cache_root().parent / "experts" / f"debate-{_digest(config.training_fields(), 12)}"


def build_experts(
    config: DebateConfig,
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    log: Log = print,
    show_progress: bool = True,
    backend_loader: Callable[[str], GenerationBackend] | None = None,
) -> ExpertsManifest:
    """Turn `config.seed` into debate-finetuned experts in `out_dir` (finished stages there are reused).

    `backend_loader` replaces the configured backend (model folder -> backend); tests script answers with it.
    """
    run = RunFolder(Path(out_dir), config.evaluation)
    _claim_folder(run, config)
    data = resolve_data_dir(data_dir if data_dir is not None else config.data_dir)
    seed_path = resolve_model(config.seed)
    log(f"experts: seed {config.seed} ({seed_path}); backend {backend_name(config.backend)}; run folder {run.root}")
    pool = ModelPool(config.backend, backend_loader)
    ev = config.evaluation
    held_out = problem_slice(get_task(ev.task), ev.split, ev.offset, ev.limit, data)
    eval_problems = [(get_task(ev.task), ex) for ex in held_out]
    write_json_atomic(run.eval / "settings.json", config.evaluation.model_dump(mode="json"))

    seed_debate = _debate_stage(
        run, run.eval / "seed-debate.jsonl", "seed debate (held-out)", eval_problems, pool,
        AgentModels.copies(seed_path, config.debate.agents), config.debate, config.random_seed + 1, log, show_progress,
    )

    agents = AgentModels.copies(seed_path, config.debate.agents)
    untrained: list[str] = []
    problems = _training_problems(config, data)
    for level in range(config.iterations):
        records = _debate_stage(
            run, run.iteration(level) / "debate.jsonl", f"iteration {level} debate", problems, pool, agents,
            config.debate, config.random_seed + 100_003 * (level + 1), log, show_progress,
        )
        folder = _dataset_stage(run, level, records, config, log)
        pool.release()  # training needs the memory
        trained = {role: [] for role in ROLES}
        for role in config.trained_roles():
            bases = agents.generators if role == "generator" else agents.critics
            for agent, base in enumerate(bases):
                model, was_trained = _train_stage(run, level, role, agent, base, read_dataset(folder, role, agent),
                                                  config, log)
                trained[role].append(model)
                if not was_trained:
                    untrained.append(f"iter-{level}/{role}-{agent}")
        # Critics left untrained (nothing uses them) stay what they were.
        agents = AgentModels(tuple(trained["generator"]), tuple(trained["critic"] or agents.critics), seed_path)

    experts = _handed_over(agents, config)
    expert_debate = system_debate = None
    if config.evaluation.experts:
        singles = config.debate.model_copy(update={"rounds": 1})
        expert_debate = _debate_stage(
            run, run.eval / "experts.jsonl", "experts (held-out)", eval_problems, pool,
            AgentModels(tuple(experts), tuple(experts), seed_path), singles, config.random_seed + 2, log, show_progress,
        )
    if config.evaluation.system:
        system_debate = _debate_stage(
            run, run.eval / "system-debate.jsonl", "finetuned system (held-out)", eval_problems, pool, agents,
            config.debate, config.random_seed + 3, log, show_progress,
        )
    pool.release()

    metrics = _metrics_stage(run, config, held_out, seed_debate, expert_debate, system_debate, experts, seed_path)
    if show_progress:
        print_metrics(metrics)
    manifest = ExpertsManifest(
        seed=seed_path,
        experts=experts,
        generators=list(agents.generators),
        critics=list(agents.critics),
        untrained=untrained,
        metrics=str(run.metrics),
    )
    manifest.write(run.manifest)
    log(f"experts: {len(experts)} experts ({config.handoff}) listed in {run.manifest}")
    return manifest


def _claim_folder(run: RunFolder, config: DebateConfig) -> None:
    """A run folder holds one config's experts: resuming with different training settings is refused."""
    if run.config.is_file():
        old = DebateConfig.model_validate(yaml.safe_load(run.config.read_text(encoding="utf-8")))
        before, now = old.training_fields(), config.training_fields()
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        if changed:
            raise DebateConfigError(
                f"{run.root} holds experts built with different settings ({', '.join(changed)}); "
                "use another --out or delete that folder"
            )
    run.root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run.config, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def problem_slice(task: Task, split: str, offset: int, limit: int, data_dir: Path | None) -> list[Example]:
    """Examples [offset, offset + limit) of a split in the task's seeded order."""
    return task.examples(split, data_dir, offset + limit)[offset:]


def training_problem_ids(config: DebateConfig, data_dir: str | Path | None, *, task: str | None = None) -> list[str]:
    """Ids of the problems `config` debates and trains on; with `task`, only that task's (no other data is loaded)."""
    data = resolve_data_dir(data_dir if data_dir is not None else config.data_dir)
    return [ex.id for _, ex in _training_problems(config, data, task)]


def _training_problems(config: DebateConfig, data_dir: Path | None, only_task: str | None = None) -> Problems:
    problems: Problems = []
    for source in config.train:
        if only_task is not None and source.task != only_task:
            continue
        task = get_task(source.task)
        problems.extend((task, ex) for ex in problem_slice(task, source.split, source.offset, source.limit, data_dir))
    return problems


def _debate_stage(
    run: RunFolder,
    path: Path,
    label: str,
    problems: Problems,
    pool: ModelPool,
    models: AgentModels,
    settings: DebateSettings,
    seed: int,
    log: Log,
    show_progress: bool,
) -> list[DebateRecord]:
    if path.is_file():
        log(f"experts: {label}: reusing {path}")
        return [DebateRecord.from_dict(row) for row in read_jsonl(path)]
    partial = path.with_name(path.stem + ".partial.jsonl")
    records = start_records(problems)
    if partial.is_file():
        saved = [DebateRecord.from_dict(row) for row in read_jsonl(partial)]
        if [r.id for r in saved] == [r.id for r in records]:
            records = saved
            log(f"experts: {label}: resuming after round {records[0].rounds_done - 1}")
    log(f"experts: {label}: {len(problems)} problems x {len(models.generators)} agents, {settings.rounds} round(s)")
    start = time.perf_counter()
    run_debate(
        pool, models, records, settings, seed=seed, label=label, show_progress=show_progress,
        on_round=lambda recs: write_jsonl_atomic(partial, [r.to_dict() for r in recs]),
    )
    write_jsonl_atomic(path, [r.to_dict() for r in records])
    partial.unlink(missing_ok=True)
    run.record_time(label, time.perf_counter() - start)
    return records


def _dataset_stage(run: RunFolder, level: int, records: Sequence[DebateRecord], config: DebateConfig, log: Log) -> Path:
    folder = run.iteration(level) / "datasets"
    counts_path = folder / "counts.json"
    if counts_path.is_file():
        counts = json.loads(counts_path.read_text())
    else:
        datasets = build_datasets(records, config.debate.agents, config.datasets, config.random_seed + level)
        labelled = sum(r.label is not None for r in records)
        counts = write_datasets(datasets, folder, problems=len(records), labelled=labelled)
    dropped = counts["problems"] - counts["labelled"]
    log(f"experts: iteration {level}: {dropped}/{counts['problems']} problems dropped, "
        f"no {config.debate.vote} answer in the final round")
    for role in ROLES:
        per_agent = ", ".join(
            f"{i}: " + " ".join(f"{k} {v}" for k, v in c.items()) for i, c in enumerate(counts[role])
        )
        log(f"experts: iteration {level} {role} data ({counts['labelled']}/{counts['problems']} labelled): {per_agent}")
    return folder


def _train_stage(
    run: RunFolder, level: int, role: str, agent: int, base: str, examples: list[dict], config: DebateConfig, log: Log
) -> tuple[str, bool]:
    """The agent's finetuned folder, and whether it was trained (an agent without data stays its base)."""
    folder = run.agent(level, role, agent)
    skipped = folder.with_name(folder.name + ".skipped.json")
    if folder.is_dir():
        log(f"experts: {folder.name} (iteration {level}): reusing {folder}")
        return str(folder), True
    if skipped.is_file():
        return json.loads(skipped.read_text())["model"], False
    if not examples:
        log(f"experts: warning: {role} {agent} has no examples in iteration {level}; it stays {base}")
        write_json_atomic(skipped, {"model": base, "reason": "no finetuning examples"})
        return base, False
    log(f"experts: finetuning {role} {agent} (iteration {level}) on {len(examples)} examples ({config.finetune.method})")
    start = time.perf_counter()
    seed = config.random_seed + 1000 * level + 10 * agent + ROLES.index(role)
    finetune(base, examples, folder, config.finetune, seed)
    run.record_time(f"iteration {level} finetune {role}-{agent}", time.perf_counter() - start)
    return str(folder), True


def _handed_over(agents: AgentModels, config: DebateConfig) -> list[str]:
    if config.handoff == "generators":
        return list(agents.generators)
    if config.handoff == "critics":
        return list(agents.critics)
    return [*agents.generators, *agents.critics]


def _metrics_stage(
    run: RunFolder,
    config: DebateConfig,
    held_out: list[Example],
    seed_debate: list[DebateRecord],
    expert_debate: list[DebateRecord] | None,
    system_debate: list[DebateRecord] | None,
    experts: list[str],
    seed_path: str,
) -> dict:
    if run.metrics.is_file():
        return json.loads(run.metrics.read_text())
    names = [_expert_name(run, path) for path in experts]
    embedder = load_embedder() if config.evaluation.embeddings else None
    task = get_task(config.evaluation.task)
    metrics: dict = {
        "eval": {**task.split_info(held_out).to_dict(), "task": task.name, "split": config.evaluation.split},
        "seed": debate_summary(seed_debate, embedder),
    }
    if expert_debate is not None:
        metrics["experts"] = {"names": names, "paths": experts, **debate_summary(expert_debate, embedder)}
    if system_debate is not None:
        metrics["system"] = debate_summary(system_debate, embedder)
    metrics["datasets"] = {
        f"iter-{level}": json.loads((run.iteration(level) / "datasets" / "counts.json").read_text())
        for level in range(config.iterations)
    }
    metrics["training"] = {
        f"iter-{level}/{role}-{agent}": _train_summary(run.agent(level, role, agent))
        for level in range(config.iterations)
        for role in config.trained_roles()
        for agent in range(config.debate.agents)
    }
    # How far and in which directions the experts moved: what a merge of them has to work with.
    metrics["task_vectors"] = {
        f: expert_geometry(seed_path, experts, f, labels=names).to_json() for f in GEOMETRY_FILTERS
    }
    if run.timings.is_file():
        metrics["timings_s"] = json.loads(run.timings.read_text())
    write_json_atomic(run.metrics, metrics)
    return metrics


def _expert_name(run: RunFolder, path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.parent == run.root else p.name


def _train_summary(folder: Path) -> dict | None:
    path = folder / "train_metrics.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {k: data[k] for k in ("examples", "train_loss", "steps", "seconds")}
