"""The discovery loop end to end on a tiny model: two iterations with DPO, resume after a crash, dev/test separation."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import pytest

from selfdev import budget
from selfdev.archive import Archive
from selfdev.candidates import CandidateQueue
from selfdev.config import DiscoveryConfig
from selfdev.generator import directions
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.prompt import ONE_SHOT
from selfdev.generator.sampler import write_samples
from selfdev.loop import baselines_work, discover
from selfdev.merging.baseline_results import GridWork
from selfdev.run_dir import RunDir
from test_archive_schema import as_schema_3

TIES_LIKE = '''```python
import torch

def merge(task_vectors):
    stacked = torch.stack(task_vectors)
    sign = torch.sign(stacked.sum(dim=0))
    agree = (torch.sign(stacked) == sign).float()
    return (stacked * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)
```'''
MEAN = "Here you go:\n```python\nimport torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n```"
SAME_AS_MEAN = "```python\nimport torch\ndef merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)\n```"
REPLIES = [
    f"```python\n{ONE_SHOT.replace('0.4', '0.8')}```",
    TIES_LIKE,
    MEAN,
    SAME_AS_MEAN,  # same function as MEAN: must reuse its score
    "I cannot write code today.",  # no code
    "```python\nimport os\ndef merge(task_vectors):\n    return task_vectors[0] * len(os.sep)\n```",  # policy
    "```python\ndef merge(task_vectors):\n    return task_vectors[0][:1]\n```",  # wrong shape
    "```python\ndef merge(task_vectors)\n    return 0\n```",  # syntax
]


def tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, **overrides) -> DiscoveryConfig:
    data = {
        "seed": str(tiny_model_dir),
        "experts": {"models": [str(p) for p in tiny_expert_dirs]},
        "task": "arithmetic",
        "iterations": 2,
        "generator": {"samples_per_iteration": len(REPLIES), "max_new_tokens": 32, "batch_size": 8},
        "cascade": {"slices": [2, 4]},
        "selection": {"finalists": 2, "problems": 2},
        "preferences": {"top_fraction": 0.25, "bottom_fraction": 0.25, "carry_over": 1, "rejected_failure_share": 0.5},
        "dpo": {"lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-3, "max_length": 3072},
        "test": {"limit": 3},
        "backend": {"batch_size": 8},
        "baselines": {"task_arithmetic": {"weight": [0.4]}},
        "sandbox": {},
    }
    data.update(overrides)
    return DiscoveryConfig.model_validate(data)


def seed_samples(run: RunDir) -> None:
    # The tiny random generator writes no code; fixed replies stand in for iteration 0's and 1's samples.
    write_samples(run.samples(0), REPLIES)
    write_samples(run.samples(1), list(reversed(REPLIES)))


@pytest.fixture(autouse=True)
def short_arithmetic(monkeypatch):
    from evals.tasks import get_task

    monkeypatch.setattr(type(get_task("arithmetic")), "max_new_tokens", 8)


def test_two_iterations_with_dpo_then_test(tmp_path, tiny_model_dir, tiny_expert_dirs):
    config = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs)
    config = config.model_copy(update={"dpo": config.dpo.model_copy(update={"max_steps": 1})})  # a budget's cap
    run = RunDir(tmp_path / "run")
    seed_samples(run)
    discover(config, run.root, log=lambda _: None)

    with Archive(run.archive) as archive:
        it0 = {c.sample_index: c for c in archive.candidates(0)}
        assert len(it0) == len(REPLIES) and len(archive.candidates(1)) == len(REPLIES)
        assert [it0[i].status for i in range(4, 8)] == ["no_code", "policy", "bad_output", "syntax"]
        assert it0[3].duplicate_of == it0[2].id and it0[3].dev == it0[2].dev
        assert {c.name for c in archive.references()} == {"seed", "task_arithmetic"}
        assert all(c.status == "ok" for c in archive.references())
        # The top 2 were re-scored on fresh selection problems; only the pick, the references and the
        # tuned baselines have test scores.
        finalists = archive.top(2)
        assert all(c.selection is not None and c.selection.n == 2 for c in finalists)
        selected = archive.meta("selected")
        assert selected in {c.id for c in finalists}
        # The unmerged seed was scored on the same selection problems: the floor a pick must reach.
        seed = next(r for r in archive.references() if r.name == "seed")
        assert seed.selection is not None and seed.selection.ids == finalists[0].selection.ids
        tested = [c for c in archive.candidates(kind=None) if c.test is not None]
        baselines = archive.baselines()
        assert [b.name for b in baselines] == ["task_arithmetic"] and baselines[0].dev.n == 4
        assert {c.id for c in tested} == {selected} | {c.id for c in archive.references() + baselines}
        assert all(c.test.n == 3 for c in tested)
        # Search-dev, selection-dev and test are disjoint.
        search = set(archive.references()[0].dev.ids)
        chosen = set(finalists[0].selection.ids)
        test_ids = set(tested[0].test.ids)
        assert not (search & chosen) and not (search & test_ids) and not (chosen & test_ids)
        assert set(baselines[0].dev.ids) == search and set(baselines[0].test.ids) == test_ids
        assert archive.meta("dev_split")["split"] == "dev" and archive.meta("test_split")["split"] == "test"
        assert archive.meta("dev_split")["ids_sha256"] != archive.meta("selection_split")["ids_sha256"]
        assert archive.meta("finished") is True
        # Iteration 1 was sampled by the adapter trained on iteration 0.
        assert {c.generator for c in archive.candidates(1)} == {"iter-0"}
    assert (run.adapter(0) / "adapter_config.json").is_file()
    metrics = json.loads((run.adapter(0) / "dpo_metrics.json").read_text())
    assert metrics["pairs"] > 1 and metrics["steps"] == 1 and metrics["train_seconds"] > 0
    assert not run.adapter(1).exists(), "no DPO after the last iteration"
    assert (run.baselines / "results.jsonl").is_file()
    # The next run's plan reads the baselines' log: at these sizes nothing is left to evaluate; on a larger search-dev
    # slice only its new problems, and the test point once the grid is whole again (the tuned point may change).
    work, sizes = baselines_work(config, run.baselines, None), budget.requested_sizes(config, 1000)
    assert work(sizes) == GridWork(dev=[("task_arithmetic", 0)], test={"task_arithmetic": 0})
    grown = dataclasses.replace(sizes, slices=[2, 6])
    assert work(grown) == GridWork(dev=[("task_arithmetic", 2)], test={"task_arithmetic": 3})
    # A log that cannot be read against the experts (a folder deleted since) is left out of the plan, with a line.
    gone = config.model_copy(update={"experts": config.experts.model_copy(update={"models": [str(tmp_path / "gone")] * 3})})
    said = []
    assert baselines_work(gone, run.baselines, None, said.append)(sizes) == budget.all_baselines(sizes)
    assert said and "is not used for the plan" in said[0]

    # The run's best algorithms export straight from its archive.
    from selfdev.export import export_algorithms, load_top_candidates

    top = load_top_candidates(run.root, 2)
    assert [c.fingerprint for c in top] == [c.fingerprint for c in Archive(run.archive).top(2)]
    assert top[0].experts == [str(p) for p in tiny_expert_dirs]
    written = export_algorithms(top, tmp_path / "exported")
    assert written and (tmp_path / "exported" / "README.md").is_file()


def test_resume_after_crash_loses_nothing_and_repeats_nothing(tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch):
    config = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, iterations=1, baselines={})
    run = RunDir(tmp_path / "run")
    seed_samples(run)
    original = CandidateQueue.put
    calls = {"n": 0}

    def crash_on_fourth(self, record, checked):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # stands in for kill -9 between two candidates
        return original(self, record, checked)

    monkeypatch.setattr(CandidateQueue, "put", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        discover(config, run.root, log=lambda _: None)
    with Archive(run.archive) as archive:
        before = {c.sample_index: c.id for c in archive.candidates(0)}
    assert sorted(before) == [0, 1, 2]

    monkeypatch.setattr(CandidateQueue, "put", original)
    with pytest.raises(Exception, match="--resume"):
        discover(config, run.root, log=lambda _: None)
    as_schema_3(run.archive)  # the crashed run as selfdev wrote it before archive schema 4
    discover(config, run.root, resume=True, log=lambda _: None)
    with Archive(run.archive) as archive:
        after = {c.sample_index: c.id for c in archive.candidates(0)}
        refs = archive.references()
        assert archive.meta("schema_version") == 4 and archive.meta("finished") is True
        indexed = {(a.kind, a.path) for a in archive.artifacts()}
    assert {("config", "config.yaml"), ("samples", "generator/iter-0/samples.jsonl")} <= indexed
    assert {path for kind, path in indexed if kind == "expert"} == {str(p) for p in tiny_expert_dirs}
    from selfdev.report import collect

    assert len(collect(run.root).iterations) == 1
    assert sorted(after) == list(range(len(REPLIES)))
    assert all(after[i] == before[i] for i in before), "finished candidates were evaluated again"
    assert len(refs) == 2
    rows = sqlite3.connect(run.archive).execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    assert rows == len(REPLIES) + 2


GOOD = "```python\nimport torch\n\ndef merge(task_vectors):\n    return 0.3 * torch.stack(task_vectors).sum(dim=0)\n```"
POLICY = "```python\nimport os\n\ndef merge(task_vectors):\n    return task_vectors[0] * len(os.sep) * 0.5\n```"
SYNTAX = "```python\ndef merge(task_vectors)\n    return 0\n```"
FIXED = "```python\nimport torch\n\ndef merge(task_vectors):\n    return 0.6 * task_vectors[1] + 0.1 * task_vectors[2]\n```"


def canned_generator(monkeypatch) -> list[list[dict]]:
    """The real sampler runs (tiny model, adapters, one reply per prompt); its replies are then replaced by canned
    code, since a random tiny model writes none: a repair fixes the policy failure and never the syntax error."""
    import selfdev.proposing

    real, seen = selfdev.proposing.sample_replies, []

    def sample(model, adapter, prompts, config, **kw):
        out = real(model, adapter, prompts, config, **kw)
        assert len(out) == len(prompts)
        seen.extend(prompts)
        repair = ["failed in the sandbox" in chat[-1]["content"] for chat in prompts]
        if not any(repair):
            return [(text, n) for text, (_, n) in zip([GOOD, POLICY, SYNTAX, "No code."], out)]
        return [(FIXED if "import os" in chat[-1]["content"] else SYNTAX, n) for chat, (_, n) in zip(prompts, out)]

    monkeypatch.setattr(selfdev.proposing, "sample_replies", sample)
    return seen


def test_evolve_with_repairs_and_a_control_arm(tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch):
    # One parent a prompt: the tiny tokenizer's prompts must leave room for a reply within dpo.max_length.
    generator = {"samples_per_iteration": 4, "max_new_tokens": 16, "batch_size": 8, "mode": "evolve",
                 "repair_attempts": 2, "control": True, "parents": 1, "copy_ban": 8, "copy_penalty": 3.0}
    config = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, generator=generator, baselines={})
    run = RunDir(tmp_path / "run")
    seen = canned_generator(monkeypatch)
    import selfdev.generator.sampler

    bans, real_bans = [], selfdev.generator.sampler.copy_bans
    monkeypatch.setattr(selfdev.generator.sampler, "copy_bans", lambda *a: bans.append(real_bans(*a)) or bans[-1])
    histories, real_choose = [], directions.choose

    def choose(history, n, seed):
        histories.append(history)
        return real_choose(history, n, seed)

    monkeypatch.setattr(directions, "choose", choose)
    discover(config, run.root, log=lambda _: None)
    # The bandit's record per iteration: none before iteration 0; before iteration 1, the main arm's 4 evolve
    # samples of iteration 0, of which GOOD paid (the failures and the control arm's replies do not).
    assert [sum(r.asked for r in h) for h in histories] == [0, 4]
    assert sum(r.paid for r in histories[1]) == 1
    # Every sampling call (fresh samples and repairs, both arms) decoded with a ban on the parents its prompts show.
    assert len(bans) >= 4 and all(b is not None and b.table and (b.n, b.penalty) == (8, 3.0) for call in bans for b in call)

    with Archive(run.archive) as archive:
        it0 = {c.sample_index: c for c in archive.candidates(0)}
        # Samples 0-3; round 1 repairs the policy (1) and syntax (2) failures as 5 and 6; round 2 repairs 6 as 10.
        assert sorted(it0) == [0, 1, 2, 3, 5, 6, 10]
        assert [it0[i].proposal for i in (0, 5, 6, 10)] == ["evolve", "repair", "repair", "repair"]
        assert (it0[5].parent_id, it0[5].status, it0[6].parent_id, it0[10].parent_id) == (it0[1].id, "ok", it0[2].id, it0[6].id)
        repair_prompt = json.loads(it0[5].prompt)[-1]["content"]
        assert "import of 'os' is not allowed" in repair_prompt
        assert repair_prompt.startswith(json.loads(it0[1].prompt)[-1]["content"])  # the request it failed, again
        # Before anything generated was scored, the evolve prompts' parents are the scored known algorithms.
        references = {c.name: c for c in archive.references()}
        assert set(references) == {"seed", *EXAMPLES} and all(c.dev is not None for c in references.values())
        assert "Algorithm 1 (accuracy" in it0[0].prompt
        asked = [json.loads(it0[i].prompt)[-1]["content"] for i in range(4)]
        assert all(sum(code.rstrip() in a for code in EXAMPLES.values()) == 1 for a in asked)
        it1 = archive.candidates(1)
        main = [c for c in it1 if c.arm == "main" and c.proposal != "repair"]
        control = [c for c in it1 if c.arm == "control" and c.proposal != "repair"]
        assert len(main) == len(control) == 4
        assert {c.generator for c in main} == {"iter-0"} and {c.generator for c in control} == {""}
        # The arms answer the same prompts, one of its own per sample (its parents and direction of change).
        assert [c.prompt for c in main] == [c.prompt for c in control] and len({c.prompt for c in main}) == 4
        # Each asks a direction of change (the one the bandit drew from iteration 0's record).
        assert all(directions.direction_of(c.prompt) is not None for c in main)
        assert any("0.3 * torch.stack" in c.prompt for c in main)  # iteration 0's best among the parents
        repairs = {c.sample_index: c for c in it1 if c.proposal == "repair"}
        assert sorted(repairs)[:4] == [9, 10, 13, 14]  # width 8: main 1, 2 and control 5, 6
        assert {repairs[13].arm, repairs[14].arm} == {"control"}
        assert json.loads(repairs[9].prompt) in seen
        # Each prompt is stored once.
        prompts = archive.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0]
        assert prompts == len({c.prompt for c in archive.candidates(kind=None) if c.prompt})
    from selfdev.report import collect

    rows = {(r.iteration, r.proposal, r.arm): r for r in collect(run.root).proposals}
    assert rows[0, "repair", "main"].repaired.value == pytest.approx(0.5)
    assert rows[1, "evolve", "control"].sampled == 4


def test_a_repeat_is_revised_in_the_repair_round(tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch):
    import selfdev.proposing

    example = f"```python\n{ONE_SHOT}```"
    real, asked = selfdev.proposing.sample_replies, []

    def sample(model, adapter, prompts, config, **kw):
        out = real(model, adapter, prompts, config, **kw)
        asked.extend(chat[-1]["content"] for chat in prompts)
        fresh = iter([example, GOOD, POLICY])
        texts = [
            FIXED if "adds nothing" in chat[-1]["content"] else SYNTAX if "failed in the sandbox" in chat[-1]["content"]
            else next(fresh)
            for chat in prompts
        ]
        return [(text, n) for text, (_, n) in zip(texts, out)]

    monkeypatch.setattr(selfdev.proposing, "sample_replies", sample)
    generator = {"samples_per_iteration": 3, "max_new_tokens": 16, "batch_size": 8, "repair_attempts": 1,
                 "revise_repeats": True}
    config = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, generator=generator, baselines={}, iterations=1)
    run = RunDir(tmp_path / "run")
    discover(config, run.root, log=lambda _: None)
    with Archive(run.archive) as archive:
        it0 = {c.sample_index: c for c in archive.candidates(0)}
        # The example again (a repeat of the task arithmetic reference) is revised, the policy failure repaired.
        assert it0[0].duplicate_of is not None and it0[1].duplicate_of is None
        assert sorted(it0) == [0, 1, 2, 3, 5]
        assert (it0[3].proposal, it0[3].parent_id, it0[5].proposal) == ("revise", it0[0].id, "repair")
        note = json.loads(it0[3].prompt)[-1]["content"]
        assert "computes exactly what the example above computes" in note
        assert it0[3].status == "ok" and it0[3].duplicate_of is None  # FIXED: a new function
        # The report shows revisions as a proposal kind of their own.
        assert "revise" in {r.proposal for r in collect_proposals(run.root)}


def collect_proposals(root):
    from selfdev.report import collect

    return collect(root).proposals


def test_resume_inside_a_repair_round(tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch):
    generator = {"samples_per_iteration": 4, "max_new_tokens": 16, "batch_size": 8, "mode": "evolve", "repair_attempts": 2}
    config = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, generator=generator, baselines={}, iterations=1)
    run = RunDir(tmp_path / "run")
    canned_generator(monkeypatch)
    original = CandidateQueue.put

    def crash_on_second_repair(self, record, checked):
        if record.proposal == "repair" and record.sample_index == 6:
            raise KeyboardInterrupt  # killed while round 1 is evaluated
        return original(self, record, checked)

    monkeypatch.setattr(CandidateQueue, "put", crash_on_second_repair)
    with pytest.raises(KeyboardInterrupt):
        discover(config, run.root, log=lambda _: None)
    with Archive(run.archive) as archive:
        before = {c.sample_index: c.id for c in archive.candidates(0)}
    assert sorted(before) == [0, 1, 2, 3, 5] and run.repairs(0, 1).is_file()

    monkeypatch.setattr(CandidateQueue, "put", original)
    discover(config, run.root, resume=True, log=lambda _: None)
    with Archive(run.archive) as archive:
        after = {c.sample_index: c for c in archive.candidates(0)}
    assert sorted(after) == [0, 1, 2, 3, 5, 6, 10]
    assert all(after[i].id == before[i] for i in before), "finished candidates were evaluated again"
    assert (after[6].parent_id, after[10].parent_id) == (after[2].id, after[6].id)


def test_bad_config_is_one_line_error(tmp_path):
    from selfdev.config import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("experts: {models: []}\niterations: 0\n")
    with pytest.raises(ConfigError) as err:
        DiscoveryConfig.load(path)
    assert "\n" not in str(err.value)


def test_a_budget_raises_an_iterations_samples_to_what_the_time_left_affords(
    tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch
):
    from selfdev import budget
    from selfdev.loop import Discovery
    from selfdev.throughput import Throughput

    requested = tiny_config(tmp_path, tiny_model_dir, tiny_expert_dirs, iterations=1, baselines={},
                            generator={"samples_per_iteration": 4, "max_new_tokens": 16, "batch_size": 8})
    sizes = budget.requested_sizes(requested, 3)
    # A plan that cut the samples to 2 on an estimate far above what this machine takes: 10 hours are left.
    estimate = {"experts": 0.0, "baselines": 0.0, "references": 0.0, "iterations": 600.0, "selection": 60.0, "test": 60.0}
    plan = budget.Plan(600, Throughput(2, 1.0, 1.0, "float32", "float32", "AVX2"), sizes,
                       dataclasses.replace(sizes, samples=2), 1.0, estimate, True)
    deadline = budget.Deadline(plan)
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    canned_generator(monkeypatch)
    lines: list[str] = []
    discovery = Discovery(plan.apply(requested), run, log=lines.append, deadline=deadline)
    try:
        discovery.run_all()
    finally:
        discovery.archive.close()
    assert "budget: iteration 0: 4 samples instead of the plan's 2" in " ".join(lines)
    with Archive(run.archive) as archive:
        assert sorted(c.sample_index for c in archive.candidates(0)) == [0, 1, 2, 3]
    assert len(deadline.spent) == 1 and deadline.spent[0][0] == 4
