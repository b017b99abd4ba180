"""The report's three figures, drawn with matplotlib's object API (Agg, no pyplot state, no display needed)."""

from __future__ import annotations

from itertools import cycle
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from selfdev.report.data import RunSummary

DEV_SCORES = "dev_scores.png"
RATES = "rates.png"
EVALUATIONS = "evaluations.png"
TEST = "test.png"

_REFERENCE_STYLE = {"seed": ("tab:gray", "--"), "task_arithmetic": ("tab:blue", "--")}
_BASELINE_COLORS = ["tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="tab:gray")


def _errors(value: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Error-bar lengths of intervals [lo, hi] around `value` (never negative from rounding)."""
    return np.clip([value - lo, hi - value], 0, None)


def _first_slice(summary: RunSummary) -> str:
    return f"dev@{summary.slices[0]}" if summary.slices else "dev"


def _reference_lines(ax: Axes, summary: RunSummary) -> None:
    """The references and tuned baselines on the first search slice (every candidate's shared problems)."""
    if not summary.slices:
        return
    rows = [(r, _REFERENCE_STYLE.get(r.name, ("tab:purple", "--"))) for r in summary.references]
    rows += [(r, (color, ":")) for r, color in zip(summary.baselines, cycle(_BASELINE_COLORS))]
    for row, (color, style) in rows:
        if row.dev is not None:
            label = row.name + (" (tuned)" if row.source == "baseline" else "")
            ax.axhline(row.dev.prefix(summary.slices[0]).accuracy, color=color, linestyle=style, label=label)


def plot_dev_scores(summary: RunSummary, path: Path) -> None:
    """Self-Developing's Figure 4: the spread of each iteration's first-slice scores against the references."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    iterations = sorted(summary.scores_by_iteration)
    filled = [i for i in iterations if summary.scores_by_iteration[i]]
    if filled:
        ax.boxplot([summary.scores_by_iteration[i] for i in filled], positions=filled, widths=0.5, showfliers=False)
        jitter = np.random.default_rng(0)  # fixed, so reruns draw the same picture
        for i in filled:
            scores = summary.scores_by_iteration[i]
            ax.scatter(i + jitter.uniform(-0.15, 0.15, len(scores)), scores, s=14, alpha=0.6, color="tab:orange")
        _reference_lines(ax, summary)
        ax.legend(loc="best", fontsize=8)
    else:
        _empty(ax, "no executable, non-duplicate candidate was scored")
    ax.set_xticks(iterations or [0], [f"{i}\n(n={len(summary.scores_by_iteration[i])})" for i in iterations] or ["0"])
    ax.set_xlabel("iteration (n: candidates)")
    ax.set_ylabel(f"{_first_slice(summary)} accuracy")
    ax.set_title("First-slice scores of executable, non-duplicate candidates")
    fig.savefig(path, dpi=110)


def plot_rates(summary: RunSummary, path: Path) -> None:
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.add_subplot()
    rows = summary.iterations
    if rows:
        x = np.array([r.iteration for r in rows], dtype=float)
        rate = np.array([r.executable.value if r.sampled else 0.0 for r in rows])
        lo = np.array([r.executable.ci[0] if r.sampled else 0.0 for r in rows])
        hi = np.array([r.executable.ci[1] if r.sampled else 0.0 for r in rows])
        ax.bar(x, rate, width=0.5, label="executable / sampled")
        ax.errorbar(x, rate, yerr=_errors(rate, lo, hi), fmt="none", color="black", capsize=4, label="95% interval")
        ax.set_xticks(x)
        ax.legend(loc="best", fontsize=8)
    else:
        _empty(ax, "no candidates sampled")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("iteration")
    ax.set_ylabel("rate")
    ax.set_title("Executable rate")
    fig.savefig(path, dpi=110)


def plot_evaluations(summary: RunSummary, path: Path) -> None:
    """Each evaluated candidate's first-slice score with its interval, in evaluation order, against the references."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    order = summary.evaluation_order
    if order:
        acc = np.array([a for a, _, _ in order])
        lo, hi = np.array([lo for _, lo, _ in order]), np.array([hi for _, _, hi in order])
        x = np.arange(1, len(order) + 1)
        ax.errorbar(x, acc, yerr=_errors(acc, lo, hi), fmt="o", color="tab:orange", ms=4, capsize=2, label="candidates")
    else:
        _empty(ax, "no candidate evaluated yet")
    _reference_lines(ax, summary)
    if summary.baseline_evaluations:
        ax.axvline(summary.baseline_evaluations, color="black", linewidth=0.8, label="baselines' evaluations")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    ax.set_xlabel("merged models evaluated on search-dev")
    ax.set_ylabel(f"{_first_slice(summary)} accuracy (95% interval)")
    ax.set_title("Candidates in evaluation order")
    fig.savefig(path, dpi=110)


def plot_test(summary: RunSummary, path: Path) -> None:
    """Test accuracy with intervals: the selected algorithm, references and tuned baselines."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.add_subplot()
    rows = summary.test
    if rows:
        acc = np.array([r.test.accuracy for r in rows])
        lo, hi = np.array([r.test.interval()[0] for r in rows]), np.array([r.test.interval()[1] for r in rows])
        y = np.arange(len(rows))
        ax.errorbar(acc, y, xerr=_errors(acc, lo, hi), fmt="o", capsize=4)
        ax.set_yticks(y, [f"{r.name} ({r.source})" for r in rows])
        ax.set_xlim(0, 1)
    else:
        _empty(ax, "nothing tested yet")
    ax.set_xlabel(f"test accuracy, 95% interval (n={rows[0].test.n})" if rows else "test accuracy")
    ax.set_title("Test")
    fig.savefig(path, dpi=110)


def write_plots(summary: RunSummary, out: Path) -> list[str]:
    plot_dev_scores(summary, out / DEV_SCORES)
    plot_rates(summary, out / RATES)
    plot_evaluations(summary, out / EVALUATIONS)
    plot_test(summary, out / TEST)
    return [DEV_SCORES, RATES, EVALUATIONS, TEST]
