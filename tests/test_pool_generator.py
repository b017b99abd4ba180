"""benchmarks/pool_generator.py: bench_generator's arms pooled over draws, the bars judged on the pool."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def pool_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    for name in ("pool_generator", "bench_generator"):
        sys.modules.pop(name, None)
    import pool_generator

    return pool_generator


def row(arm, t, n, ran, distinct, new, trivial, seconds, failures=None):
    return {
        "arm": arm, "temperature": t, "samples": n, "executable": ran, "distinct_fingerprints": distinct,
        "new_distinct": new, "repairs": 0, "repairs_executable": 0, "failures": failures or {"runtime": n - ran},
        "executable_rate": ran / n, "executable_ci": [0, 1], "distinct_per_100": 100 * distinct / n,
        "new_per_100": 100 * new / n, "trivial_share": trivial if ran else None, "parent_copy_share": 0.0 if ran else None,
        "tokens_per_executable": 100.0 if ran else None, "seconds_per_executable": seconds if ran else None,
    }


def bench(path: Path, seed: int, best: dict, evolve: dict, cpu="AVX512") -> Path:
    grid = [row("paper T=0.6", 0.6, 10, 9, 1, 1, 0.9, 1.0), best]
    path.write_text(json.dumps({
        "cpu": cpu, "seed": "s", "sampling_seed": seed, "best_paper_temperature": best["temperature"], "grid": grid,
        "arms": [best, evolve],
    }))
    return path


def test_arms_are_summed_over_draws_and_judged_on_the_pool(pool_module, tmp_path, capsys):
    a = bench(tmp_path / "a.json", 1, row("paper T=1", 1.0, 10, 5, 4, 3, 0.4, 2.0),
              row("evolve+repair", 0.4, 10, 9, 6, 4, 0.0, 3.0))
    b = bench(tmp_path / "b.json", 2, row("paper T=0.8", 0.8, 10, 7, 2, 1, 0.5, 1.0),
              row("evolve+repair", 0.4, 10, 8, 4, 2, 0.25, 2.0))
    results = pool_module.main([str(a), str(b), "--out", str(tmp_path / "pool.json")])
    paper, evolve = results["arms"]
    assert paper["arm"] == "paper (best)" and paper["temperatures"] == [1.0, 0.8]
    assert (paper["samples"], paper["executable"], paper["distinct_fingerprints"], paper["new_distinct"]) == (20, 12, 6, 4)
    assert paper["distinct_per_100"] == 30.0 and paper["failures"] == {"runtime": 8}
    # Per executable reply, each draw weighted by the replies that ran: (0.4 * 5 + 0.5 * 7) / 12, (2 * 5 + 1 * 7) / 12.
    assert paper["trivial_share"] == pytest.approx(5.5 / 12) and paper["seconds_per_executable"] == pytest.approx(17 / 12)
    assert (evolve["executable"], evolve["distinct_per_100"], evolve["new_per_100"]) == (17, 50.0, 30.0)
    assert evolve["seconds_per_executable"] == pytest.approx(43 / 17)
    bars = results["acceptance"]["evolve+repair"]
    assert bars["executable_rate_at_least_0.8"] and not bars["distinct_per_100_at_least_2x"]  # 50 against 2 x 30
    assert bars["fewer_trivial"] and not bars["seconds_per_executable_at_most_1.5x"]  # 2.53 s against 1.5 x 1.42
    assert set(results["against_paper"]["evolve+repair"]) == {"executable", "distinct", "new"}
    # The grid is pooled by temperature where every draw has the point.
    assert [(r["arm"], r["samples"]) for r in results["grid"]] == [("paper T=0.6", 20)]
    assert json.loads((tmp_path / "pool.json").read_text()) == json.loads(json.dumps(results, default=str))
    assert "paper (best)" in capsys.readouterr().out


def test_the_same_draw_twice_another_cpu_or_a_foreign_file_is_a_one_line_error(pool_module, tmp_path, capsys):
    best, evolve = row("paper T=1", 1.0, 10, 5, 4, 3, 0.4, 2.0), row("evolve+repair", 0.4, 10, 9, 6, 4, 0.0, 3.0)
    a = bench(tmp_path / "a.json", 1, best, evolve)
    other = tmp_path / "other.json"
    other.write_text('{"parents": []}')
    for argv, message in (
        ([a, bench(tmp_path / "b.json", 1, best, evolve)], "the same draw"),
        ([a, bench(tmp_path / "c.json", 2, best, evolve, cpu="AVX2")], "different CPUs (AVX2, AVX512)"),
        ([a, other], "not a bench_generator output"),
    ):
        with pytest.raises(SystemExit) as exit_:
            pool_module.main([*map(str, argv), "--out", str(tmp_path / "pool.json")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and "Traceback" not in err
