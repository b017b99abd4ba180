"""bench_generator over several draws: its arms pooled, and issue 19's bars judged on the pool.

    python benchmarks/pool_generator.py BENCH.json [BENCH.json ...] [--out runs/bench/pool_generator.json]

One draw of 48 replies an arm decides little: the plain prompt's best temperature wrote 4 to 16 distinct functions
in 48 over runs 10-13, so a setting that passed the bars on one draw failed them on the next (runs 12 and 13). This
pools the arms of bench_generator outputs from different draws (--sampling-seed) by name: replies, executable ones,
distinct and new functions are summed over the draws (distinct within each draw, as each draw's table counts them),
seconds and tokens per executable reply are totals over executable replies. Each draw's best plain setting is
pooled as `paper (best)`, whatever temperature each draw picked; the grid's points are pooled by temperature.
Every pooled evolve arm with repair is judged against `paper (best)` on the bench's own bars
(bench_generator.acceptance), and every arm's executable, distinct and new rates are compared with paper's (the
share of replies that ran, or wrote a function first seen in its draw: Newcombe interval, Fisher exact p;
unpaired, the prompts differ).

The draws must come from the same CPU (seconds are compared) and different sampling seeds (a draw counted twice
is not a new draw): otherwise a one-line error.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench_generator import acceptance, table
from selfdev import scores

BEST = "paper (best)"
SUMMED = ("samples", "executable", "distinct_fingerprints", "new_distinct", "repairs", "repairs_executable")
PER_EXECUTABLE = ("trivial_share", "parent_copy_share", "tokens_per_executable", "seconds_per_executable")


def load(paths: list[Path]) -> list[dict]:
    """The bench outputs, checked to be different draws on one CPU. Raises ValueError in one line."""
    draws = []
    for path in paths:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
            result["arms"][0]["arm"], result["cpu"], result["sampling_seed"]  # noqa: B018 (the keys a pool reads)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ValueError(f"{path}: not a bench_generator output ({error!r})") from None
        draws.append(result)
    cpus = {d["cpu"] for d in draws}
    if len(cpus) > 1:
        raise ValueError(f"the draws ran on different CPUs ({', '.join(sorted(cpus))}): their seconds do not compare")
    seeds = [(d["sampling_seed"], d.get("seed")) for d in draws]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"two outputs are the same draw (sampling seeds {[s for s, _ in seeds]}): pool different draws")
    return draws


def pool(rows: list[dict], name: str) -> dict:
    """One arm's rows of several draws as one row in bench_generator's format."""
    total = {key: sum(r[key] for r in rows) for key in SUMMED}
    ran, n = total["executable"], total["samples"]
    rate = scores.rate(ran, n)
    row = {
        "arm": name,
        "temperature": rows[0]["temperature"] if len({r["temperature"] for r in rows}) == 1 else math.nan,
        "temperatures": [r["temperature"] for r in rows],
        "draws": len(rows),
        **total,
        "executable_rate": rate.value,
        "executable_ci": list(rate.ci),
        "distinct_per_100": 100 * total["distinct_fingerprints"] / n,
        "new_per_100": 100 * total["new_distinct"] / n,
        "failures": {},
    }
    for r in rows:
        for status, count in r["failures"].items():
            row["failures"][status] = row["failures"].get(status, 0) + count
    for key in PER_EXECUTABLE:  # per executable reply: weighted by each draw's executable replies
        known = [(r[key], r["executable"]) for r in rows if r[key] is not None]
        row[key] = sum(v * k for v, k in known) / sum(k for _, k in known) if known and sum(k for _, k in known) else None
    return row


def pooled(draws: list[dict]) -> tuple[list[dict], list[dict]]:
    """(grid rows pooled by temperature, arm rows: `paper (best)` first, then every arm every draw ran)."""
    grid_names = [r["arm"] for r in draws[0]["grid"]]
    grid = [pool([r for d in draws for r in d["grid"] if r["arm"] == name], name) for name in grid_names
            if all(any(r["arm"] == name for r in d["grid"]) for d in draws)]
    names = [r["arm"] for r in draws[0]["arms"][1:] if all(any(x["arm"] == r["arm"] for x in d["arms"][1:]) for d in draws)]
    arms = [pool([d["arms"][0] for d in draws], BEST)]
    arms += [pool([r for d in draws for r in d["arms"][1:] if r["arm"] == name], name) for name in names]
    return grid, arms


def against_paper(paper: dict, arm: dict) -> dict[str, str]:
    """The arm's executable, distinct and new rates per reply against paper's: difference, interval, Fisher p."""
    return {
        what: scores.rate_difference(arm[key], arm["samples"], paper[key], paper["samples"]).describe()
        for what, key in (("executable", "executable"), ("distinct", "distinct_fingerprints"), ("new", "new_distinct"))
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benches", nargs="+", type=Path, help="bench_generator --out files of different draws")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/pool_generator.json"))
    args = parser.parse_args(argv)
    try:
        draws = load(args.benches)
    except ValueError as error:
        parser.error(str(error))
    grid, arms = pooled(draws)
    paper = arms[0]
    results = {
        "cpu": draws[0]["cpu"],
        "draws": [{"bench": str(p), "sampling_seed": d["sampling_seed"], "best_paper_temperature": d["best_paper_temperature"]}
                  for p, d in zip(args.benches, draws)],
        "grid": grid,
        "arms": arms,
        "against_paper": {a["arm"]: against_paper(paper, a) for a in arms[1:]},
        "acceptance": {a["arm"]: acceptance(paper, a) for a in arms if a["arm"].startswith("evolve") and "+repair" in a["arm"]},
    }
    print(f"CPU {results['cpu']}; {len(draws)} draws (sampling seeds {[d['sampling_seed'] for d in draws]}); grid pooled:")
    print(table(grid))
    print(f"\narms pooled ({BEST}: each draw's pick, T {paper['temperatures']}):\n" + table(arms))
    for name, rates in results["against_paper"].items():
        print(f"{name} against {BEST}:", json.dumps(rates))
    for name, bars in results["acceptance"].items():
        print(f"acceptance ({name} vs {BEST}, pooled):", json.dumps(bars))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return results


if __name__ == "__main__":
    main()
