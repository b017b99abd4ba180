"""Experts must not train on the problems discovery scores merges on (issue 17: contamination)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import evals.tasks.hendrycks_math as hendrycks_math
from evals.contamination import held_out_overlap
from evals.tasks import get_task
from seeds.debate import load_debate_config, training_problem_ids
from selfdev.cli import app
from selfdev.errors import UserError
from selfdev.experts_source import ExpertsSource, refuse_contamination, resolve_experts

REPO = Path(__file__).resolve().parents[1]
ARITHMETIC = get_task("arithmetic")


def debate_yaml(folder: Path, train: list[dict]) -> Path:
    path = folder / "experts.yaml"
    path.write_text(yaml.safe_dump({"seed": "unused-seed", "train": train,
                                    "evaluation": {"task": "arithmetic", "split": "test", "offset": 900}}))
    return path


def test_overlap_by_id_per_split():
    test_ids = [ex.id for ex in ARITHMETIC.examples("test", limit=3)]
    training = [*test_ids, "arithmetic/train/0", "gsm8k/test/5"]
    assert held_out_overlap(training, ARITHMETIC) == {"test": test_ids}
    assert held_out_overlap(["arithmetic/train/0", "arithmetic/train/1"], ARITHMETIC) == {}


def test_other_tasks_problems_are_not_even_loaded(monkeypatch):
    gsm8k = get_task("gsm8k")
    monkeypatch.setattr(gsm8k, "examples", lambda *a, **k: pytest.fail("loaded GSM8K for MATH ids"))
    assert held_out_overlap(["math/train/algebra/0123456789ab"], gsm8k) == {}


def test_training_ids_of_one_task_only(tmp_path):
    config = load_debate_config(debate_yaml(tmp_path, [
        {"task": "arithmetic", "split": "test", "offset": 2, "limit": 3},
        {"task": "gsm8k", "split": "train", "limit": 2},
    ]))
    empty = tmp_path / "no-data"  # GSM8K cannot load from here: only the arithmetic slice may be read
    empty.mkdir()
    assert training_problem_ids(config, empty, task="arithmetic") == [f"arithmetic/test/{i}" for i in (2, 3, 4)]
    with pytest.raises(Exception, match="gsm8k"):
        training_problem_ids(config, empty)


def test_resolve_experts_refuses_overlap_before_building(tmp_path):
    source = ExpertsSource(debate=debate_yaml(tmp_path, [{"task": "arithmetic", "split": "test", "limit": 4}]))
    with pytest.raises(UserError) as err:
        resolve_experts(source, "unused-seed", filter="mlp", task="arithmetic", log=lambda _: None)
    message = str(err.value)
    assert "\n" not in message and "4 of its test split" in message and "arithmetic/test/0" in message
    refuse_contamination(source, "gsm8k")  # another task's splits: nothing to refuse
    refuse_contamination(ExpertsSource(models=["a", "b"]), "arithmetic")  # named experts name no problems
    clean = ExpertsSource(debate=debate_yaml(tmp_path, [{"task": "arithmetic", "limit": 4}]))
    refuse_contamination(clean, "arithmetic")


def test_discover_and_baselines_refuse_at_start(tmp_path):
    experts = debate_yaml(tmp_path, [{"task": "arithmetic", "split": "test", "limit": 4}])
    discovery = yaml.safe_load((REPO / "configs" / "embedded.yaml").read_text())
    discovery.update(experts={"debate": str(experts)}, task="arithmetic", shared_dir=str(tmp_path / "shared"))
    (tmp_path / "discover.yaml").write_text(yaml.safe_dump(discovery))
    baselines = yaml.safe_load((REPO / "configs" / "baselines-embedded.yaml").read_text())
    baselines.update(experts={"debate": str(experts)}, task="arithmetic")
    (tmp_path / "baselines.yaml").write_text(yaml.safe_dump(baselines))

    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["discover", "--config", str(tmp_path / "discover.yaml"), "--out", str(run)])
    assert result.exit_code == 1 and "trains on arithmetic problems" in result.output
    assert not run.exists()
    result = runner.invoke(app, ["baselines", "--config", str(tmp_path / "baselines.yaml"),
                                 "--output", str(tmp_path / "baselines")])
    assert result.exit_code == 1 and "trains on arithmetic problems" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_shipped_expert_configs_do_not_train_on_discovery_problems(data_dir, monkeypatch):
    # MATH train is not in the offline data: stand in for its rows; MATH dev and test are the real ones.
    real_load = hendrycks_math.load_math
    fake_train = [{"problem": f"train problem {i}", "level": "Level 1", "type": "Algebra", "solution": "\\boxed{1}"}
                  for i in range(7500)]
    monkeypatch.setattr(hendrycks_math, "load_math",
                        lambda source, data=None: fake_train if source == "train" else real_load(source, data))
    paper = ExpertsSource(debate=REPO / "configs" / "experts-paper.yaml")
    for task in ("gsm8k", "math"):
        refuse_contamination(paper, task, data_dir)
    refuse_contamination(ExpertsSource(debate=REPO / "configs" / "experts-embedded.yaml"), "gsm8k", data_dir)
    # What experts-paper.yaml trained on before: MATH test problems 0-500, all in discovery's MATH test split.
    before = ExpertsSource(debate=paper.debate,
                           debate_overrides={"train": [{"task": "math", "split": "test", "limit": 500}],
                                             "evaluation": {"offset": 500}})
    with pytest.raises(UserError, match="500 of its test split"):
        refuse_contamination(before, "math", data_dir)
