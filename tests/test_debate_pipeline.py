"""The debate engine's batching, and `build_experts` end to end on a tiny model: outputs, resume, CLI errors.

Answers come from a scripted backend (a random tiny model never writes a
boxed number), while finetuning is real: trl SFT with LoRA on the tiny Qwen2.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from evals.backends.base import Completion
from evals.backends.config import BackendConfig
from evals.tasks import get_task
from seeds.debate import build_experts, default_out_dir, load_debate_config
from seeds.debate.config import DebateConfig, DebateConfigError
from seeds.debate.engine import AgentModels, DebateSettings, run_debate, start_records
from seeds.debate.models import ModelPool
from seeds.debate.transcript import agent_messages

QUESTION = re.compile(r"What is the result of ([0-9+\-*]+)\?")


class ScriptedBackend:
    """Solves arithmetic, wrong on a seeded 40% of rows; summaries are canned. Logs every call."""

    name = "scripted"

    def __init__(self, model: str, calls: list) -> None:
        self.model, self.calls = model, calls

    def generate(self, prompts, params, *, progress=None):
        self.calls.append({"model": self.model, "prompts": list(prompts), "seed": params.seed})
        outs = []
        for i, prompt in enumerate(prompts):
            first = prompt[0]["content"]
            if first.startswith("Here are a list of opinions"):
                text = "Most agents agree on one number."
            else:
                right = eval(QUESTION.search(first).group(1))  # digits and + - * only
                wrong = random.Random(f"{params.seed}/{i}/{len(prompt)}/{first}").random() < 0.4
                text = f"- multiply first\n- then add\n\\boxed{{{right + 1 if wrong else right}}}"
            outs.append(Completion(text=text, num_tokens=8, finish_reason="stop"))
        if progress:
            progress(len(prompts))
        return outs


def problems(n: int):
    task = get_task("arithmetic")
    return [(task, ex) for ex in task.examples("train", limit=n)]


def test_copies_share_one_call_per_round_with_all_prompts():
    calls: list = []
    pool = ModelPool(BackendConfig(), lambda model: ScriptedBackend(model, calls))
    records = start_records(problems(4))
    run_debate(pool, AgentModels.copies("seed", 3), records, DebateSettings(), seed=0, show_progress=False)
    # round 0, summaries, round 1: one call each, every agent and problem inside.
    assert [len(c["prompts"]) for c in calls] == [12, 12, 12]
    assert {c["model"] for c in calls} == {"seed"}
    rec = records[0]
    assert rec.rounds_done == 2 and len(rec.summaries) == 1 and len(rec.votes) == 2
    round1 = calls[2]["prompts"][1]  # problem 0, agent 1
    assert round1[1]["content"] == rec.responses[0][1]  # its own round-0 answer
    assert rec.summaries[0][1] in round1[2]["content"]


def test_distinct_agents_answer_their_own_prompts_and_resume_by_round():
    calls: list = []
    pool = ModelPool(BackendConfig(), lambda model: ScriptedBackend(model, calls))
    models = AgentModels(("g0", "g1", "g2"), ("c0", "c1", "c2"), "seed")
    settings = DebateSettings(summarize=False)
    records = start_records(problems(3))
    run_debate(pool, models, records, settings, seed=0, show_progress=False)
    assert [c["model"] for c in calls] == ["g0", "g1", "g2", "c0", "c1", "c2"]
    assert all(len(c["prompts"]) == 3 for c in calls)
    assert len({c["seed"] for c in calls}) == 6  # no two models replay one sample stream
    calls.clear()
    prompt = agent_messages(records[0], 0, 0)
    pool.generate([("g1", prompt), ("c2", prompt)], settings.sampling(0))
    assert [c["model"] for c in calls] == ["c2", "g1"]  # the model in memory answers first, no reload
    # A debate cut after round 0 continues with round 1 only.
    calls.clear()
    fresh = start_records(problems(3))
    run_debate(pool, models, fresh, settings.model_copy(update={"rounds": 1}), seed=0, show_progress=False)
    calls.clear()
    run_debate(pool, models, fresh, settings, seed=0, show_progress=False)
    assert {c["model"] for c in calls} == {"c0", "c1", "c2"}
    assert [r.responses for r in fresh] == [r.responses for r in records]


def tiny_config(seed_dir: Path, **updates) -> DebateConfig:
    data = {
        "seed": str(seed_dir),
        "train": [{"task": "arithmetic", "limit": 6}],
        "debate": {"agents": 3, "rounds": 2, "max_new_tokens": 16, "summary_max_new_tokens": 16},
        "finetune": {"method": "lora", "epochs": 1, "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8,
                     "max_length": 1024},
        "evaluation": {"task": "arithmetic", "split": "test", "limit": 5, "system": True, "embeddings": False},
        "backend": {"name": "transformers"},
    }
    data.update(updates)
    return DebateConfig.model_validate(data)


@pytest.fixture
def scripted():
    calls: list = []
    return calls, (lambda model: ScriptedBackend(model, calls))


def test_build_experts_end_to_end_and_resume(tmp_path, tiny_model_dir, scripted, monkeypatch):
    from transformers import AutoModelForCausalLM

    import seeds.debate.pipeline as pipeline

    calls, loader = scripted
    monkeypatch.setenv("SELFDEV_CACHE", str(tmp_path / "cache"))
    config = tiny_config(tiny_model_dir)
    out = default_out_dir(config)  # where `experts: {debate: FILE}` looks
    real_finetune = pipeline.finetune
    trained: list[str] = []

    def killed_on_third(base, examples, folder, settings, seed):
        if len(trained) == 2:
            raise KeyboardInterrupt  # the run is killed while training the third agent
        trained.append(folder.name)
        return real_finetune(base, examples, folder, settings, seed)

    monkeypatch.setattr(pipeline, "finetune", killed_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_experts(config, out, show_progress=False, backend_loader=loader, log=lambda _: None)
    seed_debate = next((out / "eval").glob("*/seed-debate.jsonl"))
    assert (out / "iter-0" / "debate.jsonl").is_file()
    assert trained == ["generator-0", "generator-1"]

    # Resumed: no debate is replayed, finished agents are not retrained.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "iter-0" / "debate.jsonl", seed_debate)}
    calls.clear()
    resumed: list[str] = []

    def counted(base, examples, folder, settings, seed):
        resumed.append(folder.name)
        return real_finetune(base, examples, folder, settings, seed)

    monkeypatch.setattr(pipeline, "finetune", counted)
    manifest = build_experts(config, out, show_progress=False, backend_loader=loader, log=lambda _: None)
    assert resumed[0] == "generator-2" and set(resumed) <= {"generator-2", "critic-0", "critic-1", "critic-2"}
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert all(len(c["prompts"]) in (5, 15) for c in calls)  # held-out work only: 5 problems, 3 agents

    # Three loadable generation experts, different from the seed, listed in the manifest.
    assert manifest.experts == manifest.generators and len(manifest.experts) == 3
    assert json.loads((out / "experts.json").read_text())["experts"] == manifest.experts
    seed_weights = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    for path in manifest.experts:
        expert = AutoModelForCausalLM.from_pretrained(path).state_dict()
        assert expert.keys() == seed_weights.keys()
        assert any(not torch.equal(expert[k], seed_weights[k]) for k in seed_weights)

    counts = json.loads((out / "iter-0" / "datasets" / "counts.json").read_text())
    for agent in range(3):
        rows = [json.loads(l) for l in (out / "iter-0" / "datasets" / f"critic-{agent}.jsonl").read_text().splitlines()]
        assert counts["critic"][agent]["total"] == len(rows) and all(r["agent"] == agent for r in rows)
    metrics = json.loads(Path(manifest.metrics).read_text())
    assert len(metrics["seed"]["debate_per_round"]) == 2 and len(metrics["system"]["debate_per_round"]) == 2
    assert len(metrics["experts"]["single_agent_per_agent"]) == 3
    experts = metrics["experts"]
    assert len(experts["ids"]) == 5 and [sum(c) / 5 for c in experts["correct_per_agent"]] == pytest.approx(
        experts["single_agent_per_agent"])
    # Every handed-over expert moved away from the seed over every linear layer it was trained on.
    geometry = metrics["task_vectors"]["all-linear"]
    assert geometry["experts"] == experts["names"] and all(r > 0 for r in geometry["relative"])
    assert len(geometry["cosines"]) == 3 and all(abs(c) <= 1 + 1e-9 for row in geometry["cosines"] for c in row)

    # A finished folder costs nothing the third time.
    calls.clear()
    monkeypatch.setattr(pipeline, "finetune", lambda *a: pytest.fail("retrained a finished agent"))
    build_experts(config, out, show_progress=False, backend_loader=loader, log=lambda _: None)
    assert calls == []

    # Discovery and baselines reach the same experts through `experts: {debate: FILE}`; all is finished, no model loads.
    from selfdev.errors import UserError
    from selfdev.experts_source import ExpertsSource, resolve_experts

    config_file = tmp_path / "experts.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    source = ExpertsSource.model_validate({"debate": str(config_file)})
    found = resolve_experts(source, str(tiny_model_dir), filter="mlp", log=lambda _: None)
    assert found == manifest.experts and calls == []
    with pytest.raises(UserError, match="not this run's seed"):
        resolve_experts(source, manifest.experts[0], filter="mlp", log=lambda _: None)

    # Other training settings in the same folder are refused; other evaluation settings are not.
    with pytest.raises(DebateConfigError, match="different settings"):
        build_experts(tiny_config(tiny_model_dir, random_seed=5), out, show_progress=False, backend_loader=loader)
    smaller = tiny_config(tiny_model_dir, evaluation={"task": "arithmetic", "limit": 4, "embeddings": False})
    again = build_experts(smaller, out, show_progress=False, backend_loader=loader, log=lambda _: None)
    assert json.loads(Path(again.metrics).read_text())["eval"]["n"] == 4
    assert json.loads(Path(manifest.metrics).read_text())["eval"]["n"] == 5  # the fuller check is kept


def test_cli_user_errors_are_one_line(tmp_path):
    from selfdev.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["experts", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")])
    assert missing.exit_code == 1 and "cannot read config" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": [{"task": "arithmetic", "limit": 2}], "debate": {"agnets": 3}}))
    result = runner.invoke(app, ["experts", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "debate.agnets" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"evaluation": {"split": "dev"}}, "belongs to discovery"),
        ({"train": [{"task": "chess", "limit": 3}]}, "unknown task"),
        ({"debate": {"agents": 1, "rounds": 2}}, "at least two agents"),
        ({"train": []}, "train"),
        ({"critics": False, "iterations": 2}, "iterations > 1 needs finetuned critics"),
        ({"critics": False, "handoff": "all"}, "handoff needs finetuned critics"),
    ],
)
def test_config_rejects(tmp_path, update, message):
    data = {"train": [{"task": "arithmetic", "limit": 2}], **update}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DebateConfigError, match=message):
        load_debate_config(path)


def test_shipped_configs_load():
    root = Path(__file__).resolve().parents[1] / "configs"
    for name in ("experts-embedded.yaml", "experts-paper.yaml"):
        load_debate_config(root / name)


def test_skipping_critics_keeps_the_experts_cache_key():
    with_critics = DebateConfig.model_validate({"train": [{"task": "arithmetic", "limit": 2}]})
    without = with_critics.model_copy(update={"critics": False})
    assert without.trained_roles() == ("generator",) and with_critics.trained_roles() == ("generator", "critic")
    assert default_out_dir(without) == default_out_dir(with_critics)


def test_full_recipe_two_iterations_with_critics_summaries_and_the_system_debate(tmp_path, tiny_model_dir, scripted):
    """The published recipe at small scale: summarizer on, critics trained and debating, two finetuning iterations
    (iteration 1 debates with iteration 0's agents and finetunes them again), the finetuned system's debate
    evaluated on the held-out slice next to the seed's."""
    calls, loader = scripted
    debate = {"agents": 3, "rounds": 2, "summarize": True, "max_new_tokens": 16, "summary_max_new_tokens": 16}
    config = tiny_config(tiny_model_dir, iterations=2, debate=debate)
    out = tmp_path / "maf"
    manifest = build_experts(config, out, show_progress=False, backend_loader=loader, log=lambda _: None)

    def models_of(prompts_from: str) -> set[str]:
        return {Path(c["model"]).relative_to(out).as_posix() if str(c["model"]).startswith(str(out)) else "seed"
                for c in calls if c["prompts"] and c["prompts"][0][0]["content"].startswith(prompts_from)}

    # Iteration 1's training debate: round 0 by iteration 0's generators, round 1 by its critics, summaries
    # written by the seed (the summarizer is not finetuned).
    iter1 = [c for c in calls if "iter-0/" in str(c["model"])]
    assert {Path(c["model"]).name for c in iter1} >= {f"{role}-{i}" for role in ("generator", "critic") for i in range(3)}
    assert "seed" in models_of("Here are a list of opinions")
    records = [json.loads(line) for line in (out / "iter-1" / "debate.jsonl").read_text().splitlines()]
    assert all(len(r["summaries"]) == 1 and len(r["responses"]) == 2 for r in records)
    # Both iterations trained every generator and critic; the handed-over experts are iteration 1's generators,
    # each finetuned from its own iteration-0 self.
    for level in (0, 1):
        for role in ("generator", "critic"):
            for i in range(3):
                assert (out / f"iter-{level}" / f"{role}-{i}" / "config.json").is_file()
    assert manifest.experts == [str(out / "iter-1" / f"generator-{i}") for i in range(3)]
    assert [json.loads((out / "iter-1" / f"generator-{i}" / "train_metrics.json").read_text())["base"]
            for i in range(3)] == [str(out / "iter-0" / f"generator-{i}") for i in range(3)]
    # The finetuned system (iteration 1's generators, then critics) debated the held-out slice, as the seed did.
    metrics = json.loads(Path(manifest.metrics).read_text())
    assert metrics["system"]["n"] == metrics["seed"]["n"] == 5
    assert len(metrics["system"]["debate_per_round"]) == len(metrics["seed"]["debate_per_round"]) == 2
    system_calls = [c for c in calls if "iter-1/" in str(c["model"])]
    assert {Path(c["model"]).name for c in system_calls} == {f"{r}-{i}" for r in ("generator", "critic") for i in range(3)}
    assert set(metrics["training"]) == {f"iter-{l}/{r}-{i}" for l in (0, 1) for r in ("generator", "critic") for i in range(3)}
