"""baselines.json and baselines.md: the tuned point of each method, every grid point, the evaluation count."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from selfdev.merging.baseline_results import SEED_ROW, BaselineResult, best_per_method, format_params
from selfdev.config import BaselinesConfig


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
        "grid": [asdict(r) for r in dev + test],
    }


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
    lines += ["", "## Every grid point", "", "| split | method | params | accuracy | correct | eval s | merge s |", "|---|---|---|---|---|---|---|"]
    for r in summary["grid"]:
        lines.append(
            f"| {r['split']} | {r['method']} | {format_params(r['params']) or '-'} | {r['accuracy']:.3f} "
            f"| {r['correct']}/{r['n']} | {r['eval_seconds']:.0f} | {r['merge_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(out: Path, config: BaselinesConfig, dev: list[BaselineResult], test: list[BaselineResult]) -> dict:
    summary = summarize(config, dev, test)
    _write_atomic(out / "baselines.json", json.dumps(summary, indent=2) + "\n")
    _write_atomic(out / "baselines.md", render_markdown(summary))
    return summary
