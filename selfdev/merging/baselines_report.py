"""baselines.json and baselines.md: the tuned point of each method, every grid point, the evaluation count."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from evals.atomic import write_text_atomic
from selfdev.merging.baseline_results import SEED_ROW, BaselineResult, best_per_method, format_params
from selfdev.config import BaselinesConfig
from selfdev.scores import Evaluation, paired, wilson_interval


def summarize(config: BaselinesConfig, dev: list[BaselineResult], test: list[BaselineResult]) -> dict:
    best = best_per_method(dev)
    tested = {row.method: row for row in test}
    per_method = [
        {
            "method": method,
            "params": row.params,
            "dev_accuracy": row.accuracy,
            "n_evals": sum(r.method == method for r in dev),
            "test_accuracy": tested[method].accuracy if method in tested else None,
            "dev_outcomes": row.outcomes,
            "test_outcomes": tested[method].outcomes if method in tested else None,
        }
        for method, row in best.items()
    ]
    return {
        "task": config.task,
        "seed": config.seed,
        "experts": config.experts.describe(),
        "filter": config.filter,
        "dev_n": dev[0].n if dev else 0,
        "test_n": test[0].n if test else 0,
        # The budget discovery is compared against: merged models scored on dev (the seed row is not a merge).
        "dev_evaluations": sum(r.method != SEED_ROW for r in dev),
        "test_evaluations": len(test),
        "tuned": per_method,
        "grid": [{**asdict(r), "vs_seed": _vs_seed(r, dev + test)} for r in dev + test],
    }


def _vs_seed(row: BaselineResult, rows: list[BaselineResult]) -> dict | None:
    """The merge against the unmerged seed on the same problems (paired), where the seed row was scored."""
    seed = next((r for r in rows if r.method == SEED_ROW and r.split == row.split), None)
    a, b = Evaluation.from_json(row.outcomes), Evaluation.from_json(seed.outcomes) if seed else None
    if row.method == SEED_ROW or a is None or b is None:
        return None
    p = paired(a, b)
    return {"diff": p.diff, "ci": list(p.ci), "p_value": p.p_value, "verdict": p.verdict()}


def render_markdown(summary: dict) -> str:
    lines = [
        f"# Baselines: {summary['task']} dev ({summary['dev_n']} problems)",
        "",
        f"Seed `{summary['seed']}`, experts: {summary['experts']}, filter `{summary['filter']}`.",
        f"Merged models evaluated on dev: {summary['dev_evaluations']}"
        + (f"; tuned points re-scored on {summary['test_n']} test problems." if summary["test_evaluations"] else "."),
        "",
        "| method | tuned params | dev accuracy | n evals | test accuracy |",
        "|---|---|---|---|---|",
    ]
    for row in summary["tuned"]:
        test = f"{row['test_accuracy']:.3f}" if row["test_accuracy"] is not None else ""
        params = format_params(row["params"]) or "-"
        name = "seed (no merge)" if row["method"] == SEED_ROW else row["method"]
        lines.append(f"| {name} | {params} | {row['dev_accuracy']:.3f} | {row['n_evals']} | {test} |")
    lines += [
        "", "## Every grid point", "",
        "Accuracy [95% interval]; against the seed paired on the same problems (difference [95% bootstrap "
        "interval], exact McNemar p).", "",
        "| split | method | params | accuracy | correct | vs seed (paired) | eval s | merge s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["grid"]:
        lo, hi = wilson_interval(r["correct"], r["n"])
        v = r.get("vs_seed")
        vs = f"{v['diff']:+.3f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}] p={v['p_value']:.2g}: {v['verdict']}" if v else "-"
        lines.append(
            f"| {r['split']} | {r['method']} | {format_params(r['params']) or '-'} | {r['accuracy']:.3f} [{lo:.2f}, {hi:.2f}] "
            f"| {r['correct']}/{r['n']} | {vs} | {r['eval_seconds']:.0f} | {r['merge_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(out: Path, config: BaselinesConfig, dev: list[BaselineResult], test: list[BaselineResult]) -> dict:
    summary = summarize(config, dev, test)
    write_text_atomic(out / "baselines.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / "baselines.md", render_markdown(summary))
    return summary
