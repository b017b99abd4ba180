"""Baselines: config validation, grids, and a resumable tuning run on the tiny model."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from selfdev.merging.baseline_results import BaselineResult, GridWork, ResultLog, over
from selfdev.merging.baselines import BaselineRunner, pending
from selfdev.config import BaselinesConfig
from selfdev.scores import Evaluation


def config(**overrides) -> dict:
    return {"experts": ["/e1", "/e2"], "methods": {"ties": {"weight": [0.2, 0.4], "density": [0.3, 0.5, 0.7]}}, **overrides}


def test_grid_is_the_cartesian_product_in_order():
    c = BaselinesConfig.model_validate(config(methods={"ties": {"weight": [0.2, 0.4], "density": [0.3, 0.7]}, "model_stock": {}}))
    assert c.grid("ties") == [
        {"weight": 0.2, "density": 0.3},
        {"weight": 0.2, "density": 0.7},
        {"weight": 0.4, "density": 0.3},
        {"weight": 0.4, "density": 0.7},
    ]
    assert c.grid("model_stock") == [{}]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"methods": {"tie": {}}}, "unknown mergekit method 'tie'"),
        ({"methods": {"ties": {"wieght": [0.2]}}}, "ties has no parameter 'wieght'"),
        ({"methods": {"ties": {"weight": []}}}, "at least one value"),
        ({"filter": "mpl"}, "unknown filter"),
        ({"task": "gsm9k"}, "unknown task"),
        ({"experts": {"models": ["/e1"], "synthetic": {"count": 3}}}, "exactly one of"),
        ({"dev_limit": 0}, "greater than or equal to 1"),
        ({"backend": {"dtype": "int8"}}, "backend.dtype"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(ValidationError, match=message):
        BaselinesConfig.model_validate(config(**overrides))


def test_embedded_and_paper_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    embedded = BaselinesConfig.load(root / "baselines-embedded.yaml")
    paper = BaselinesConfig.load(root / "baselines-paper.yaml")
    assert embedded.dev_limit and embedded.dev_limit <= 30
    for method in ("task_arithmetic", "ties", "dare_ties", "breadcrumbs", "model_stock"):
        assert method in paper.methods
    assert {0.2, 0.4, 0.6} <= set(paper.methods["ties"]["weight"]) and {0.3, 0.5, 0.7} <= set(paper.methods["ties"]["density"])


def test_tuning_run_resumes_from_its_log(tmp_path, tiny_model_dir, tiny_expert_dirs, data_dir):
    c = BaselinesConfig.model_validate(
        {
            "seed": str(tiny_model_dir),
            "experts": [str(e) for e in tiny_expert_dirs],
            "task": "gsm8k",
            "dev_limit": 2,
            "test_limit": 1,
            "data_dir": str(data_dir),
            "output": str(tmp_path / "run"),
            "backend": {"batch_size": 2, "threads": 1},
            "methods": {"task_arithmetic": {"weight": [0.2, 0.6]}, "model_stock": {}},
        }
    )
    lines = []
    summary = BaselineRunner(c, log=lines.append, progress=False).run()
    assert summary["dev_evaluations"] == 3 and summary["test_evaluations"] == 3
    assert [r["method"] for r in summary["tuned"]] == ["seed", "task_arithmetic", "model_stock"]
    assert summary["tuned"][1]["n_evals"] == 2 and summary["tuned"][1]["test_accuracy"] is not None
    out = tmp_path / "run"
    assert json.loads((out / "baselines.json").read_text())["dev_n"] == 2
    table = (out / "baselines.md").read_text()
    assert "| task_arithmetic | weight=" in table and "| seed (no merge) | - |" in table
    # Every merge is paired against the seed row of its split, on the same problems.
    grid = json.loads((out / "baselines.json").read_text())["grid"]
    for r in grid:
        compared = r["method"] != "seed"
        assert (r["vs_seed"] is not None) == compared
        if compared:
            assert r["vs_seed"]["ci"][0] <= r["vs_seed"]["diff"] <= r["vs_seed"]["ci"][1] and 0 < r["vs_seed"]["p_value"] <= 1
    assert re.search(r"\| dev \| task_arithmetic \| weight=0.2 \| \S+ \[\S+, \S+\] \| \d/2 \| [+-]\S+ \[", table)
    assert len((out / "results.jsonl").read_text().splitlines()) == 7
    # Each evaluated point's line tells how far the grid is and how long the rest will take.
    assert re.search(r"^\[2/4\] dev task_arithmetic weight=\S+: \S+ \(\d+s\); dev grid 2/4 \(50%\) \S+, ETA \S+$",
                     "\n".join(lines), re.M)
    assert re.search(r"^\[3/3\] test .*; test grid 3/3 \(100%\) \S+, ETA 0s$", "\n".join(lines), re.M)

    # A rerun finds every point in the log: no model is loaded, nothing is appended.
    rerun = BaselineRunner(c, log=lines.append, progress=False)
    assert rerun.run()["tuned"] == summary["tuned"]
    assert rerun._backend is None
    assert len((out / "results.jsonl").read_text().splitlines()) == 7
    assert sum("(cached)" in line for line in lines) == 7
    assert pending(c) == GridWork(dev=[("seed", 0), ("task_arithmetic", 0), ("task_arithmetic", 0), ("model_stock", 0)],
                                  test={"seed": 0, "task_arithmetic": 0, "model_stock": 0})

    # One more dev problem (a second make run whose plan grew the slice): only that problem is evaluated per point,
    # and a method's test point is pending until its dev grid is whole (the tuned point may change).
    more = c.model_copy(update={"dev_limit": 3})
    assert pending(more) == GridWork(dev=[("seed", 1), ("task_arithmetic", 1), ("task_arithmetic", 1), ("model_stock", 1)],
                                     test={"seed": 1, "task_arithmetic": 1, "model_stock": 1})
    lines.clear()
    grown = BaselineRunner(more, log=lines.append, progress=False).run()
    assert sum("2 of 3 problems cached" in line for line in lines) == 4
    assert all(r["n"] == 3 for r in grown["grid"] if r["split"] == "dev")
    log_rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["n"] for r in log_rows[7:11]] == [1, 1, 1, 1]  # the new problem alone
    assert sum(pending(more).test.values()) == 0 and all(n == 0 for _, n in pending(more).dev)
    # A slice within what is known: every point is read back on exactly its problems, no model is loaded.
    fewer = BaselineRunner(c.model_copy(update={"dev_limit": 1}), log=lines.append, progress=False)
    assert all(r["n"] == 1 for r in fewer.run()["grid"] if r["split"] == "dev") and fewer._backend is None


def test_cli_reports_config_errors_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from selfdev.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("experts: [/e1]\nmethods:\n  ties:\n    wieght: [0.2]\n")
    result = CliRunner().invoke(app, ["baselines", "--config", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {bad}: methods: ties has no parameter 'wieght'; it takes density, int8_mask, lambda, normalize, rescale, weight"


def test_a_points_rows_combine_on_exactly_the_problems_asked(tmp_path):
    def row(ids, correct, seconds):
        e = Evaluation.of(ids, correct)
        return BaselineResult("k", "c", "ties", {}, "dev", e.accuracy, e.k, e.n, seconds, 1.0, e.to_json())

    first, second = row(["a", "b"], [True, False], 10.0), row(["b", "c"], [True, True], 4.0)
    combined = over([first, second], ["c", "a", "b"])
    # The later row wins a problem evaluated twice; each row's seconds count for the problems taken from it.
    assert combined.evaluation == Evaluation.of(["c", "a", "b"], [True, True, True])
    assert (combined.n, combined.correct) == (3, 3) and combined.eval_seconds == pytest.approx(5.0 + 4.0)
    assert over([first, second], ["a"]).eval_seconds == pytest.approx(5.0)
    # A line cut short by a crash neither breaks the log nor swallows the next row.
    log = ResultLog(tmp_path / "results.jsonl")
    log.append(first)
    with log.path.open("a") as f:
        f.write('{"key": "k", "cont')
    log.append(second)
    assert [r.evaluation.ids for r in log.load("c")["k"]] == [("a", "b"), ("b", "c")]
