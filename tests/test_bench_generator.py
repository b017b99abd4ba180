"""benchmarks/bench_generator.py in a reduced mode on the tiny models: grid, arms at equal samples, repairs, trivia.

The tiny random generator writes no code, so the real sampler's replies are swapped for canned ones after it ran
(the tokens it took are kept): the sandbox, the trivial fingerprints, the parents' scoring and the accounting
are the bench's own.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from sandbox.api import IMPORTABLE
from selfdev.generator import directions
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.prompt import PLAN_FIRST

REPO = Path(__file__).resolve().parents[1]

MEAN = "```python\nimport torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n```"
GOOD = "```python\nimport torch\n\ndef merge(task_vectors):\n    return 0.3 * torch.stack(task_vectors).sum(dim=0)\n```"
POLICY = "```python\nimport os\n\ndef merge(task_vectors):\n    return task_vectors[0] * len(os.sep) * 0.5\n```"
FIXED = "```python\nimport torch\n\ndef merge(task_vectors):\n    return 0.6 * task_vectors[1] + 0.1 * task_vectors[2]\n```"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_generator", REPO / "benchmarks" / "bench_generator.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_reduced_run_on_tiny_models(tmp_path, tiny_model_dir, tiny_expert_dirs, data_dir, monkeypatch, capsys):
    bench = load_bench()
    real, prompts, bans, planned = bench.generate, [], [], []

    def canned(backend, chats, config, **kw):
        out = real(backend, chats, config, **kw)
        prompts.extend(chats)
        bans.extend([(config.copy_ban, config.copy_penalty, config.copy_ban_tail)] * len(chats))
        planned.extend([config.plan_temperature] * len(chats))
        texts = []
        for i, chat in enumerate(chats):
            user = chat[-1]["content"]
            if "failed in the sandbox" in user:
                texts.append(FIXED)
            elif "adds nothing" in user:
                texts.append(GOOD)
            elif "Algorithm 1 (accuracy" in user:  # evolve: no trivial merges, one policy failure per batch
                texts.append([GOOD, POLICY][i % 2])
            else:
                texts.append([MEAN, POLICY][i % 2])
        return [(text, n) for text, (_, n) in zip(texts, out)]

    monkeypatch.setattr(bench, "generate", canned)
    out = tmp_path / "bench.json"
    argv = ["--seed", str(tiny_model_dir), "--experts", *map(str, tiny_expert_dirs), "--task", "arithmetic",
            "--data-dir", str(data_dir), "--samples", "4", "--batch", "2", "--batch-size", "4", "--grid", "0.7", "1.0",
            "--max-new-tokens", "16", "--parent-problems", "2", "--parents", "2", "--out", str(out)]
    results = bench.main(argv)
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["cpu"] == torch.backends.cpu.get_cpu_capability()

    assert [r["temperature"] for r in results["grid"]] == [0.7, 1.0] and results["best_paper_temperature"] == 0.7
    arms = {r["arm"]: r for r in results["arms"]}
    assert list(arms) == ["paper T=0.7", "paper+repair", "evolve", "evolve+repair"]
    assert all(r["samples"] == 4 for r in arms.values()), "every arm draws the same number of replies"
    paper = arms["paper T=0.7"]
    assert (paper["executable"], paper["distinct_fingerprints"], paper["trivial"]) == (2, 1, ["mean"])
    assert paper["trivial_share"] == 1.0 and paper["failures"] == {"policy": 2}
    assert paper["top_reasons"] == [("policy: import of 'os' is not allowed (importable: " + IMPORTABLE + ")", 2)]
    lo, hi = paper["executable_ci"]
    assert lo < paper["executable_rate"] == 0.5 < hi
    # The parents were scored: the known algorithms (the paper arm's plain mean is trivial and left out).
    assert len(results["parents"]) == len(EXAMPLES) and all("n=2" in p["dev"] for p in results["parents"])
    evolve, repaired = arms["evolve"], arms["evolve+repair"]
    assert (evolve["executable"], evolve["trivial_share"], evolve["repairs"]) == (2, 0.0, 0)
    # Each batch of 2: GOOD and a policy failure, whose repair runs: 2 fresh + 1 repair, then 1 fresh.
    assert (repaired["repairs"], repaired["repairs_executable"], repaired["executable"]) == (1, 1, 3)
    assert repaired["distinct_fingerprints"] == 2 and repaired["tokens_per_executable"] > 0
    assert list(results["acceptance"]) == ["evolve+repair"]
    assert set(results["acceptance"]["evolve+repair"]) == {"executable_rate_at_least_0.8", "distinct_per_100_at_least_2x",
                                          "fewer_trivial", "seconds_per_executable_at_most_1.5x",
                                          "new_per_100_at_least_2x", "executable_against_paper"}
    bars = results["acceptance"]["evolve+repair"]
    assert bars["executable_against_paper"].endswith("no difference (within noise)")  # 3/4 against 2/4
    assert bars["fewer_trivial"] is True and set(bans) == {(0, float("inf"), 0)}, "an arm without +ban banned copies"
    assert any("failed in the sandbox" in chat[-1]["content"] and "import os" in chat[-1]["content"] for chat in prompts)
    # Every candidate was kept as its arm finished, reply and status with it.
    kept = [json.loads(line) for line in out.with_suffix(".candidates.jsonl").read_text().splitlines()]
    assert len(kept) == 4 * 5 and {r["arm"] for r in kept} == {"paper T=0.7", "paper T=1", *arms}
    assert sum(r["status"] == "ok" for r in kept if r["arm"] == "evolve+repair") == 3
    # GOOD and FIXED are neither trivial nor a copy of the shown parent (task arithmetic, also the example).
    assert repaired["parent_copy_share"] == 0.0
    # A later bench takes the scored parents back (--parents-from), outcomes included, instead of scoring them again.
    again = bench.parents_from_bench(out)
    assert [(p.code, p.dev.describe()) for p in again] == [(p["code"], p["dev"]) for p in results["parents"]]
    assert all(p.dev.n == 2 and p.fingerprint for p in again)
    # A shorter bench for a slow generator: reused parents, one grid point, only the arm the bars are about.
    short = tmp_path / "short.json"
    argv = ["--seed", str(tiny_model_dir), "--parents-from", str(out), "--samples", "2", "--batch-size", "2",
            "--grid", "0.7", "--max-new-tokens", "16", "--arms", "evolve+repair", "evolve-cycle", "evolve+ban+repair",
            "--copy-ban", "12", "--copy-penalty", "3", "--copy-ban-tail", "1", "--out", str(short)]
    asked = len(prompts)
    short_run = bench.main(argv)
    assert [r["arm"] for r in short_run["arms"]] == ["paper T=0.7", "evolve+repair", "evolve-cycle", "evolve+ban+repair"]
    assert list(short_run["acceptance"]) == ["evolve+repair", "evolve+ban+repair"]
    # Only the +ban arm decodes with the ban on copying what its prompt shows (the arms run in --arms' order).
    assert bans[asked:][-2:] == [(12, 3.0, 1)] * 2 and set(bans[asked:][:-2]) == {(0, float("inf"), 0)}
    assert set(planned[asked:]) == {None} and not any(PLAN_FIRST in chat[-1]["content"] for chat in prompts[asked:])
    # evolve-cycle asks the directions in turn.
    unbanned = [chat for chat, ban in zip(prompts[asked:], bans[asked:]) if ban[0] == 0]
    cycle = [chat for chat in unbanned if "Algorithm 1 (accuracy" in chat[-1]["content"]][-2:]
    assert [directions.direction_of(json.dumps(chat)) for chat in cycle] == [0, 1]
    # The +plan arms ask for a plan and draw it at --plan-temperature, the code at the arm's temperature.
    plan_argv = [*argv[: argv.index("--arms") + 1], "paper+plan", "evolve+plan+repair", "--plan-temperature", "1.3",
                 "--out", str(tmp_path / "plan.json")]
    asked = len(prompts)
    plan_run = bench.main(plan_argv)
    assert [(r["arm"], r["plan_temperature"]) for r in plan_run["arms"]] == [
        ("paper T=0.7", None), ("paper+plan", 1.3), ("evolve+plan+repair", 1.3)]
    assert list(plan_run["acceptance"]) == ["evolve+plan+repair"]
    grid = len(prompts) - asked - 4  # the grid's replies came first, then 2 of each plan arm
    assert planned[asked:] == [None] * grid + [1.3] * 4 and all(PLAN_FIRST in c[-1]["content"] for c in prompts[-4:])
    # Parents from a run's archive, fingerprinted again as the bench screens (the run's own fingerprints differ).
    from selfdev.archive import Archive

    with Archive(tmp_path / "run" / "archive.sqlite") as archive:
        for p in again:
            archive.add(dataclasses.replace(p, fingerprint="the run's own", id=None))
    argv[argv.index("--parents-from"):argv.index("--parents-from") + 2] = ["--archive", str(tmp_path / "run" / "archive.sqlite")]
    from_run = bench.main(argv)
    assert {p["code"] for p in from_run["parents"]} == {p.code for p in again}
    assert all(p["fingerprint"] != "the run's own" for p in from_run["parents"])
    with Archive(tmp_path / "empty.sqlite"):
        pass
    argv[argv.index("--archive") + 1] = str(tmp_path / "empty.sqlite")
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2 and "no scored, distinct, non-trivial candidate" in capsys.readouterr().err
    # The grid alone, another draw of replies: no parents needed, no bars to judge.
    argv = ["--seed", str(tiny_model_dir), "--samples", "2", "--batch-size", "2", "--grid", "0.7",
            "--max-new-tokens", "16", "--arms", "--sampling-seed", "1", "--out", str(short)]
    alone = bench.main(argv)
    assert [r["arm"] for r in alone["arms"]] == ["paper T=0.7"] and alone["acceptance"] == {}
    assert alone["sampling_seed"] == 1 and alone["parents"] == []
    # With --revise-repeats a repair round also asks again for a reply that ran but repeats a known function.
    argv = ["--seed", str(tiny_model_dir), "--samples", "6", "--batch", "2", "--batch-size", "2", "--grid", "0.7",
            "--max-new-tokens", "16", "--arms", "paper+repair", "--repair-attempts", "1", "--revise-repeats",
            "--out", str(short)]
    asked = len(prompts)
    (_, revised) = bench.main(argv)["arms"]
    # Batch 1: the plain mean, new to the arm as to a run, and a policy failure, repaired. Batch 2: the mean again,
    # now a repeat, is revised (into GOOD, new); the budget leaves no room to repair the second policy failure.
    assert (revised["revisions"], revised["revisions_new"], revised["repairs"], revised["executable"]) == (1, 1, 1, 4)
    assert sum("computes exactly what an algorithm already tried" in chat[-1]["content"] for chat in prompts[asked:]) == 1


def test_non_positive_counts_are_one_line_errors(capsys):
    bench = load_bench()
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--experts", "e", "--parent-pool", "0"])
    assert exit_.value.code == 2 and "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--experts", "e", "--revise-repeats", "--repair-attempts", "0"])
    assert exit_.value.code == 2 and "--revise-repeats needs --repair-attempts" in capsys.readouterr().err


def test_parents_from_a_file_that_is_no_bench_output_is_a_one_line_error(tmp_path, capsys):
    bench = load_bench()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"parents": [{"code": "x", "dev": "0.1"}]}))  # written before outcomes were kept
    for path in (old, tmp_path / "missing.json"):
        with pytest.raises(SystemExit) as exit_:
            bench.main(["--parents-from", str(path)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "not a bench_generator output" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        bench.main(["--parents-from", str(old), "--archive", str(old)])
    assert "one source of parents" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # read for nothing: no evolve arm was asked for
        bench.main(["--parents-from", str(old), "--arms", "paper+repair"])
    assert "none was asked for" in capsys.readouterr().err


def test_a_missing_archive_is_a_one_line_error_and_creates_nothing(tmp_path, capsys):
    bench = load_bench()
    missing = tmp_path / "run" / "archive.sqlite"
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--archive", str(missing)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no such file" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
