"""The experts' record in a discovery run: measured once, found for debate experts, shown in the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch

from seeds.debate import held_out_metrics
from seeds.debate.pipeline import ExpertsManifest
from selfdev.archive import Archive
from selfdev.experts_record import GEOMETRY_KEY, HELD_OUT_KEY, expert_labels, expert_rows, record_experts
from selfdev.report import collect, write_report


def debate_folder(root: Path, seed: Path, experts: list[Path]) -> list[str]:
    """The layout `build_experts` leaves: iter-0/generator-<i>, experts.json, and the held-out metrics."""
    paths = []
    for i, expert in enumerate(experts):
        dst = root / "iter-0" / f"generator-{i}"
        shutil.copytree(expert, dst)
        paths.append(str(dst))
    ids = [f"gsm8k/test/{i}" for i in range(40)]
    seed_right = [[int(i % 4 == 0) for i in range(40)] for _ in experts]
    expert_right = [[int(i % 4 == 0 or (a == 2 and i % 2 == 1)) for i in range(40)] for a in range(len(experts))]
    metrics = {
        "eval": {"task": "gsm8k", "split": "test", "n": 40},
        "seed": {"single_agent_per_agent": [0.25] * 3, "ids": ids, "correct_per_agent": seed_right},
        "experts": {"names": [f"iter-0/generator-{i}" for i in range(3)], "ids": ids, "correct_per_agent": expert_right},
    }
    (root / "eval").mkdir()
    (root / "eval" / "metrics.json").write_text(json.dumps(metrics))
    ExpertsManifest(str(seed), paths, paths, [], [], str(root / "eval" / "metrics.json")).write(root / "experts.json")
    return paths


def test_held_out_metrics_found_only_for_the_manifests_experts(tmp_path, tiny_model_dir, tiny_expert_dirs):
    paths = debate_folder(tmp_path / "debate", tiny_model_dir, tiny_expert_dirs)
    assert held_out_metrics(paths)["eval"]["n"] == 40
    assert held_out_metrics(paths[:2]) is None  # not the handed-over set
    assert held_out_metrics([str(p) for p in tiny_expert_dirs]) is None  # named models: no manifest


def test_recorded_once_logged_and_reported(tmp_path, tiny_model_dir, tiny_expert_dirs):
    paths = debate_folder(tmp_path / "debate", tiny_model_dir, tiny_expert_dirs)
    # A fourth expert parallel to the first: its task vector is twice the first one's.
    double = tmp_path / "double"
    shutil.copytree(tiny_expert_dirs[0], double)
    base = safetensors.torch.load_file(tiny_model_dir / "model.safetensors")
    state = safetensors.torch.load_file(double / "model.safetensors")
    safetensors.torch.save_file({k: base[k] + 2 * (v - base[k]) for k, v in state.items()},
                                double / "model.safetensors", metadata={"format": "pt"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("task: gsm8k\n")
    logs: list[str] = []
    with Archive(run / "archive.sqlite") as archive:
        record_experts(archive, str(tiny_model_dir), paths, "mlp", logs.append)
        assert archive.meta(HELD_OUT_KEY)["eval"]["n"] == 40
        first = archive.meta(GEOMETRY_KEY)
    assert "task vector size" in logs[0] and not any(line.startswith("warning") for line in logs)

    rows = collect(run).experts
    assert [r.name for r in rows] == ["generator-0", "generator-1", "generator-2"]
    assert rows[0].relative == pytest.approx(first["relative"][0])
    assert rows[0].held_out.n == 40 and rows[0].held_out.accuracy == pytest.approx(0.25)
    assert rows[0].vs_seed.diff == 0 and not rows[0].vs_seed.significant
    assert rows[2].held_out.accuracy == pytest.approx(0.75) and rows[2].vs_seed.significant  # +20 of 40, all one way

    with Archive(tmp_path / "other.sqlite") as archive:
        logs.clear()
        record_experts(archive, str(tiny_model_dir), [paths[0], str(double)], "mlp", logs.append)
        assert archive.meta(HELD_OUT_KEY) is None  # not a debate manifest's experts
        assert any(line.startswith("warning") and "nearly parallel" in line for line in logs)
        rows = expert_rows(archive.meta(GEOMETRY_KEY), None)
    assert rows[1].relative == pytest.approx(2 * rows[0].relative, rel=1e-4) and rows[1].held_out is None

    index = write_report(run)
    summary = (index.parent / "summary.md").read_text()
    assert "Experts: task vector sizes" in summary and "generator-2" in summary
    assert json.loads((index.parent / "summary.json").read_text())["experts"][2]["held_out"] is not None


def test_labels_keep_parent_where_names_repeat():
    assert expert_labels(["/a/x", "/b/y"]) == ["x", "y"]
    assert expert_labels(["/r/iter-0/g", "/r/iter-1/g"]) == ["iter-0/g", "iter-1/g"]


def test_older_runs_have_no_expert_rows():
    assert expert_rows(None, None) == []
