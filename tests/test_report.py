"""The run report: per-iteration counts, separate dev and test columns, and partial or empty runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from selfdev.archive import Archive, ArchiveVersionError
from selfdev.report import collect, print_summary, summary_rows, write_report
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord

CODE = "def merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)  # a < b & c\n"


def ev(score: float, n: int, offset: int = 0) -> Evaluation:
    """round(score * n) right answers spread evenly, so every prefix scores about `score` too."""
    right = [int((i + 1) * score + 1e-9) > int(i * score + 1e-9) for i in range(n)]
    return Evaluation.of((f"p{offset + i}" for i in range(n)), right)


def scored(iteration: int, index: int, dev20: float, dev100: float | None = None, **kw) -> CandidateRecord:
    dev = ev(dev100, 100) if dev100 is not None else ev(dev20, 20)
    return CandidateRecord(iteration, index, "ok", code=CODE, reply=CODE, dev=dev, **kw)


CONFIG = "experts: [a, b]\ntask: gsm8k\ncascade:\n  slices: [20, 100]\n"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    with Archive(run / "archive.sqlite") as archive:
        archive.add(CandidateRecord(-1, 0, "ok", kind="reference", name="seed", dev=ev(0.22, 100), test=ev(0.2, 200, 1000)))
        archive.add(CandidateRecord(-1, 1, "ok", kind="reference", name="task_arithmetic", dev=ev(0.24, 100),
                              test=ev(0.21, 200, 1000)))
        archive.add(CandidateRecord(-2, 0, "ok", kind="baseline", name="ties", params={"weight": 0.4, "density": 0.5},
                              dev=ev(0.26, 100), test=ev(0.3, 200, 1000)))
        # Iteration 0: two measured, one duplicate of the first, one sandbox failure, one reply without code.
        first = archive.add(scored(0, 0, 0.3, 0.28, fingerprint="a"))
        archive.add(scored(0, 1, 0.1, fingerprint="b"))
        archive.add(CandidateRecord(0, 2, "ok", code=CODE, fingerprint="a", duplicate_of=first, dev=ev(0.28, 100)))
        archive.add(CandidateRecord(0, 3, "syntax", code="def merge(:"))
        archive.add(CandidateRecord(0, 4, "no_code", reply="I cannot."))
        # Iteration 1: nothing ran.
        for i, status in enumerate(["runtime", "timeout", "policy"]):
            archive.add(CandidateRecord(1, i, status, code=CODE))
        # Iteration 2: the best algorithm, selected and tested.
        best = archive.add(scored(2, 0, 0.5, 0.45, fingerprint="c", selection=ev(0.4, 50, 100), test=ev(0.35, 200, 1000)))
        archive.add(scored(2, 1, 0.35, fingerprint="d"))
        archive.add(CandidateRecord(2, 2, "memory", code=CODE))
        archive.set_meta("selected", best)
        archive.set_meta("finished", True)
    (run / "baselines").mkdir()
    (run / "baselines" / "baselines.json").write_text(json.dumps({"dev_evaluations": 5, "tuned": []}))
    adapter = run / "generator" / "iter-0" / "adapter"
    adapter.mkdir(parents=True)
    metrics = {"train_loss": 0.69, "steps": 3, "pairs": 2, "rejected": 2, "rejected_failures": 1, "log": []}
    (adapter / "dpo_metrics.json").write_text(json.dumps(metrics))
    return run


def test_per_iteration_counts_rates_and_intervals(run_dir: Path):
    rows = {r.iteration: r for r in summary_rows(run_dir)}
    assert sorted(rows) == [0, 1, 2]  # references and baselines are not an iteration's samples
    r0, r1, r2 = rows[0], rows[1], rows[2]
    assert (r0.sampled, r0.duplicates, r0.evaluated, r0.reached_last) == (5, 1, 2, 1)
    assert r0.executable.value == pytest.approx(0.6) and r0.executable.ci[0] < 0.6 < r0.executable.ci[1]
    # Mean and median of the first slice (20 problems), which every evaluated candidate shares.
    assert r0.first_slice_mean.value == pytest.approx((0.25 + 0.1) / 2) and r0.first_slice_mean.n == 2
    assert r0.best.n == 100 and r0.best.accuracy == pytest.approx(0.28)
    assert r0.failures == {"no_code": 1, "syntax": 1}
    assert r0.dpo == {"train_loss": 0.69, "pairs": 2, "steps": 3, "rejected": 2, "rejected_failures": 1}
    assert (r1.sampled, r1.executable.value, r1.evaluated, r1.best, r1.dpo) == (3, 0, 0, None, None)
    assert r1.first_slice_mean.n == 0
    assert (r2.sampled, r2.evaluated, r2.reached_last) == (3, 2, 1)


def test_one_ranking_and_paired_test_table(run_dir: Path):
    s = collect(run_dir)
    assert s.slices == [20, 100]
    # Deepest first, then accuracy; the duplicate never appears.
    assert [r.candidate_id for r in s.top] == [12, 4, 13, 5]
    assert s.selected == 12 and s.baseline_evaluations == 5
    assert s.scores_by_iteration == {0: [0.25, 0.1], 1: [], 2: [0.45, 0.35]}
    test = {r.name: r for r in s.test}
    assert set(test) == {"seed", "task_arithmetic", "ties", "#12"}
    assert test["seed"].vs_seed is None
    # The pick against the seed: 0.35 vs 0.20 on the same 200 problems, 30 discordant, all its way.
    pick = test["#12"]
    assert pick.vs_seed.n == 200 and pick.vs_seed.diff == pytest.approx(0.15) and pick.vs_seed.significant
    # Tuned task arithmetic is the baseline when there is one; here only TIES was tuned, so the reference stands in.
    assert pick.vs_task_arithmetic.diff == pytest.approx(0.14)
    assert test["ties"].vs_seed.diff == pytest.approx(0.1)
    assert any("200 test problems" in note for note in s.notes)


def test_write_report_files_with_n_and_intervals(run_dir: Path):
    index = write_report(run_dir)
    out = run_dir / "report"
    assert index == out / "index.html"
    for name in ("dev_scores.png", "rates.png", "evaluations.png", "test.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'<img src="{name}"' in index.read_text()
    page = index.read_text()
    assert "<pre>def merge(task_vectors):" in page and "a &lt; b &amp; c" in page  # code escaped, in <pre>

    md = (out / "summary.md").read_text()
    assert "| model | source | test | vs seed (paired) | vs tuned task arithmetic (paired) |" in md
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "0.350 [0.29, 0.42] n=200" in rows["#12"] and "+0.150" in rows["#12"] and ": better" in rows["#12"]
    assert "| algorithm | source | iteration | params | search-dev | selection-dev | test |" in md
    assert "0.450 [0.36, 0.55] n=100 | 0.400 [0.28, 0.54] n=50 |" in rows["#12 (selected)"]
    assert rows["#13"].endswith("n=20 | – | – |")  # cut at the first slice, never selected or tested
    assert "weight=0.4, density=0.5" in rows["ties"]

    data = json.loads((out / "summary.json").read_text())
    assert [r["sampled"] for r in data["iterations"]] == [5, 3, 3]
    assert data["top"][0]["candidate_id"] == 12 and data["selected"] == 12


@pytest.mark.parametrize("with_archive", [True, False])
def test_empty_run_still_reports(tmp_path: Path, with_archive: bool):
    if with_archive:
        Archive(tmp_path / "archive.sqlite").close()
    index = write_report(tmp_path)
    assert index.is_file() and (tmp_path / "report" / "evaluations.png").is_file()
    assert (tmp_path / "archive.sqlite").exists() == with_archive  # reading never creates an archive
    data = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert data["iterations"] == [] and data["top"] == [] and data["baselines"] == [] and data["test"] == []


def test_too_small_to_conclude_is_said(tmp_path: Path):
    with Archive(tmp_path / "archive.sqlite") as archive:
        archive.add(CandidateRecord(-1, 0, "ok", kind="reference", name="seed", dev=ev(0.2, 10), test=ev(0.2, 30)))
        pick = archive.add(CandidateRecord(0, 0, "ok", code=CODE, dev=ev(0.3, 10), test=ev(0.3, 30)))
        archive.set_meta("selected", pick)
        archive.set_meta("finished", True)
    s = collect(tmp_path)
    assert s.test[-1].vs_seed.verdict() == "no difference (within noise)"
    assert any("cannot be told from noise" in n for n in s.notes)
    assert any("No model differs significantly" in n for n in s.notes)


def test_a_pick_below_the_seed_is_said_and_not_tested(tmp_path: Path):
    with Archive(tmp_path / "archive.sqlite") as archive:
        archive.add(CandidateRecord(-1, 0, "ok", kind="reference", name="seed", dev=ev(0.2, 10), selection=ev(0.2, 10, 10),
                                    test=ev(0.2, 30)))
        best = archive.add(CandidateRecord(0, 0, "ok", code=CODE, dev=ev(0.1, 10), selection=ev(0.0, 10, 10)))
        archive.set_meta("selected", None)
        archive.set_meta("selected_below_seed", best)
        archive.set_meta("finished", True)
    s = collect(tmp_path)
    assert s.selected is None and [r.name for r in s.test] == ["seed"]
    assert f"No algorithm was selected: the best finalist (#{best}) scored below the unmerged seed on selection-dev, " \
        "so none was tested." in s.notes


def test_old_archive_is_refused_clearly(tmp_path: Path):
    import sqlite3

    db = sqlite3.connect(tmp_path / "archive.sqlite")
    db.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY, scores TEXT)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.commit()
    db.close()
    with pytest.raises(ArchiveVersionError, match="schema 1.*start a new run"):
        collect(tmp_path)


def test_print_summary(run_dir: Path):
    console = Console(record=True, width=240)
    print_summary(run_dir, console)
    text = console.export_text()
    assert "Discovery: per iteration" in text and "0.690" in text and "0.60 [" in text
    assert "Test: paired" in text and "better" in text


def test_proposal_rows_per_kind_and_arm_with_repair_success(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    with Archive(run / "archive.sqlite") as archive:
        archive.add(scored(0, 0, 0.3, fingerprint="a", proposal="evolve"))
        archive.add(scored(0, 1, 0.2, fingerprint="a", proposal="evolve"))  # same function: one distinct
        archive.add(CandidateRecord(-1, 1, "ok", kind="reference", name="task_arithmetic", code=CODE, fingerprint="a"))
        broken = archive.add(CandidateRecord(0, 2, "policy", code=CODE, proposal="evolve"))
        hopeless = archive.add(CandidateRecord(0, 3, "syntax", code="def merge(:", proposal="evolve"))
        archive.add(CandidateRecord(0, 4, "runtime", code=CODE, proposal="evolve", arm="control"))
        # Round 1: the policy failure is fixed; the syntax failure is not, and round 2 fails again.
        archive.add(scored(0, 6, 0.25, fingerprint="b", proposal="repair", parent_id=broken))
        again = archive.add(CandidateRecord(0, 7, "syntax", code="def merge(:", proposal="repair", parent_id=hopeless))
        archive.add(CandidateRecord(0, 11, "no_code", proposal="repair", parent_id=again))
    s = collect(run)
    rows = {(r.proposal, r.arm): r for r in s.proposals}
    assert list(rows) == [("evolve", "control"), ("evolve", "main"), ("repair", "main")]
    main = rows["evolve", "main"]
    assert (main.sampled, main.distinct, main.failures, main.repaired) == (4, 1, {"policy": 1, "syntax": 1}, None)
    assert main.copies == 2  # both compute the reference's function
    assert main.executable.value == pytest.approx(0.5) and main.executable.n == 4
    assert main.median_dev.value == pytest.approx(0.25) and main.median_dev.n == 2
    assert rows["evolve", "control"].executable.value == 0
    repair = rows["repair", "main"]
    assert (repair.sampled, repair.distinct, repair.copies) == (3, 1, 0)
    # Two candidates were repaired (the second twice); one of them now runs.
    assert repair.repaired.value == pytest.approx(0.5) and repair.repaired.n == 2
    index = write_report(run)
    assert "Proposals: per iteration, kind and arm" in index.read_text()
    assert "| 0 | repair | main | 3 |" in (index.parent / "summary.md").read_text()


def test_a_config_that_does_not_validate_is_a_note(run_dir: Path):
    (run_dir / "config.yaml").write_text("task: gsm8k\ncascade: {slices: [100, 20]}\n")  # hand-edited, broken
    summary = collect(run_dir)
    assert summary.slices == [20, 100] and summary.task is None  # the archive's dev sizes stand in
    assert any("config does not validate" in note and "cascade" in note for note in summary.notes)


def test_the_dpo_arm_against_the_control_arm(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    with Archive(run / "archive.sqlite") as archive:
        first = archive.add(scored(1, 0, 0.3))
        for i in range(1, 9):  # the DPO arm repeats its first function 8 times: each repeat is worth its score
            archive.add(CandidateRecord(1, i, "ok", code=CODE, reply=CODE, duplicate_of=first, dev=ev(0.3, 20)))
        archive.add(CandidateRecord(1, 9, "runtime", code=CODE))
        for i in range(10, 20):  # the control arm: 2 of 10 run, worth less
            archive.add(scored(1, i, 0.1, arm="control") if i < 12 else CandidateRecord(1, i, "syntax", arm="control"))
        # Each arm repairs its own failures: different requests, so no paired row for repairs.
        archive.add(CandidateRecord(1, 20, "syntax", code=CODE, proposal="repair", arm="control"))
        archive.add(CandidateRecord(1, 21, "ok", code=CODE, proposal="repair", arm="main"))
    s = collect(run)
    (row,) = s.arms
    assert (row.iteration, row.proposal) == (1, "paper")
    assert (row.executable.a, row.executable.b, row.executable.n) == (pytest.approx(0.9), pytest.approx(0.2), 10)
    # Reply i against reply i: 7 ran only with DPO, none only without; exact McNemar 2 * 0.5^7.
    assert (row.executable.only_a, row.executable.only_b) == (7, 0)
    assert row.executable.p_value == pytest.approx(2 * 0.5**7) and row.executable.verdict() == "better"
    assert (row.dev.a.n, row.dev.b.n) == (9, 2) and row.dev.diff == pytest.approx(0.2)
    index = write_report(run)
    assert "DPO arm against the control arm" in index.read_text()
    assert "DPO arm against the control arm" in (index.parent / "summary.md").read_text()
    # Each arm's rate carries its interval and n.
    assert "| 1 | paper | 0.90 [0.6, 1.0] n=10 | 0.20 [0.1, 0.5] n=10 | +0.700" in (index.parent / "summary.md").read_text()


def test_no_control_arm_no_arm_table(run_dir: Path):
    assert collect(run_dir).arms == []
    assert "DPO arm against the control arm" not in write_report(run_dir).read_text()


def test_evolve_directions_per_iteration(tmp_path: Path):
    from selfdev.generator.directions import DIRECTIONS, NAMES
    from selfdev.generator.proposals import evolve_messages, prompt_json

    asked = [prompt_json(evolve_messages(3, [], DIRECTIONS[d])) for d in range(len(DIRECTIONS))]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    with Archive(run / "archive.sqlite") as archive:
        first = archive.add(scored(0, 0, 0.3, fingerprint="a", proposal="evolve", prompt=asked[1]))
        archive.add(CandidateRecord(0, 1, "ok", code=CODE, proposal="evolve", prompt=asked[1], duplicate_of=first,
                                    fingerprint="a", dev=ev(0.3, 20)))  # ran, but a repeat: not new
        archive.add(CandidateRecord(0, 2, "runtime", code=CODE, proposal="evolve", prompt=asked[4]))
        archive.add(CandidateRecord(0, 3, "runtime", code=CODE, proposal="repair", prompt=asked[4]))  # not a direction's
    s = collect(run)
    assert [(r.direction, r.asked, r.executable.value, r.new) for r in s.directions] == [
        (NAMES[1], 2, pytest.approx(1.0), 1), (NAMES[4], 1, 0.0, 0)]
    index = write_report(run)
    assert f"| 0 | {NAMES[1]} | 2 |" in (index.parent / "summary.md").read_text()
