"""The report's tables as cells, and those cells as HTML, Markdown and a rich table."""

from __future__ import annotations

import html

from rich import box
from rich.table import Table

from selfdev.report.data import RunSummary, ScoredRow
from selfdev.scores import Evaluation, Paired, rate

Cells = tuple[list[str], list[list[str]]]  # headers, rows


def _ev(e: Evaluation | None) -> str:
    return "–" if e is None else e.describe()


def _paired(p: Paired | None) -> str:
    if p is None:
        return "–"
    return f"{p.diff:+.3f} [{p.ci[0]:+.2f}, {p.ci[1]:+.2f}] p={p.p_value:.2g}: {p.verdict()}"


def iteration_cells(summary: RunSummary) -> Cells:
    first = f"dev@{summary.slices[0]}" if summary.slices else "first slice"
    last = f"dev@{summary.slices[-1]}" if summary.slices else "last slice"
    with_dpo = any(r.dpo for r in summary.iterations)
    headers = ["iteration", "sampled", "executable", "duplicates", "evaluated", f"reached {last}"]
    headers += [f"mean {first}", f"median {first}", "best", "failures"]
    headers += ["DPO pairs", "rejected failures", "DPO loss"] if with_dpo else []
    rows = []
    for r in summary.iterations:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(r.failures.items())) or "–"
        row = [str(r.iteration), str(r.sampled), f"{round(r.executable.value * r.sampled) if r.sampled else 0} "
               f"({r.executable.describe(2)})", str(r.duplicates), str(r.evaluated), str(r.reached_last)]
        row += [r.first_slice_mean.describe(), r.first_slice_median.describe(), _ev(r.best), failures]
        if with_dpo:
            dpo = r.dpo or {}
            counts = [str(int(dpo[k])) if k in dpo else "–" for k in ("pairs", "rejected_failures")]
            loss = "–" if "train_loss" not in dpo else f"{dpo['train_loss']:.3f}"
            row += counts + [loss]
        rows.append(row)
    return headers, rows


_ARMS_TITLE = "DPO arm against the control arm (no DPO; the same prompt and temperature)"


def arm_cells(summary: RunSummary) -> Cells:
    """With a control arm: whether DPO changed how often the generator's code runs and what the code is worth."""
    first = f"dev@{summary.slices[0]}" if summary.slices else "first slice"
    headers = ["iteration", "proposal", "executable: DPO", "control", "difference (paired by prompt and seed)",
               f"median {first}: DPO", "control", "difference"]
    rows = [
        [str(r.iteration), r.proposal, *(rate(round(share * r.executable.n), r.executable.n).describe(2)
                                         for share in (r.executable.a, r.executable.b)),
         _paired(r.executable), r.dev.a.describe(), r.dev.b.describe(), r.dev.describe()]
        for r in summary.arms
    ]
    return headers, rows


def proposal_cells(summary: RunSummary) -> Cells:
    """Per iteration, proposal kind and arm: how often the generator's code ran, how varied it was (copies: runs of a
    reference's function, the prompt's example above all), repairs."""
    first = f"median dev@{summary.slices[0]}" if summary.slices else "median first slice"
    headers = ["iteration", "proposal", "arm", "sampled", "executable", "distinct", "copies", "failures", "repaired",
               first]
    rows = []
    for r in summary.proposals:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(r.failures.items())) or "–"
        repaired = "–" if r.repaired is None else r.repaired.describe(2)
        rows.append([str(r.iteration), r.proposal, r.arm, str(r.sampled), r.executable.describe(2), str(r.distinct),
                     str(r.copies), failures, repaired, r.median_dev.describe()])
    return headers, rows


_DIRECTIONS_TITLE = "Evolve, main arm: per iteration and direction of change"


def direction_cells(summary: RunSummary) -> Cells:
    """Per iteration and direction of change: how often it was asked, how often its code ran, how often that code was
    new to the run (the bandit's reward, which also leaves out trivial merges)."""
    headers = ["iteration", "direction", "asked", "executable", "new"]
    rows = [[str(r.iteration), r.direction, str(r.asked), r.executable.describe(2), str(r.new)] for r in summary.directions]
    return headers, rows


def comparison_rows(summary: RunSummary) -> list[ScoredRow]:
    return summary.references + summary.baselines + summary.top


def comparison_cells(summary: RunSummary) -> Cells:
    headers = ["algorithm", "source", "iteration", "params", "search-dev", "selection-dev", "test"]
    cells = []
    for r in comparison_rows(summary):
        name = r.name + (" (selected)" if r.candidate_id is not None and r.candidate_id == summary.selected else "")
        it = "–" if r.iteration is None else str(r.iteration)
        cells.append([name, r.source, it, r.params or "–", _ev(r.dev), _ev(r.selection), _ev(r.test)])
    return headers, cells


_EXPERTS_TITLE = "Experts: task vector sizes and directions, held-out accuracy"


def expert_cells(summary: RunSummary) -> Cells:
    headers = ["expert", "‖τ‖/‖W‖", "cosine to the others", "held-out (single agent)", "vs seed agent (paired)"]
    cells = [
        [
            r.name,
            f"{r.relative:.2e}",
            ", ".join(f"{other} {c:.3f}" for other, c in r.cosines.items()) or "–",
            _ev(r.held_out),
            _paired(r.vs_seed),
        ]
        for r in summary.experts
    ]
    return headers, cells


def test_cells(summary: RunSummary) -> Cells:
    headers = ["model", "source", "test", "vs seed (paired)", "vs tuned task arithmetic (paired)"]
    return headers, [[r.name, r.source, _ev(r.test), _paired(r.vs_seed), _paired(r.vs_task_arithmetic)] for r in summary.test]


def _intro(summary: RunSummary) -> list[str]:
    lines = [f"Run {summary.run_dir}" + (f", task {summary.task}." if summary.task else ".")]
    lines.append(
        "Every score is accuracy [95% interval] n=problems. Search-dev, selection-dev and test are disjoint: the "
        "cascade searches on search-dev, the finalists are re-scored once on selection-dev, and only the selected "
        "algorithm, the references and the tuned baselines are tested. Comparisons are paired on the same problems "
        "(exact McNemar p, 95% paired bootstrap interval of the difference)."
    )
    if summary.baselines:
        lines.append(
            f"Baselines: tuned on the search-dev problems with {summary.baseline_evaluations} merged models evaluated."
        )
    else:
        lines.append("No baselines were found in this run.")
    return lines + summary.notes


# -- Markdown ---------------------------------------------------------------------------


def _md_table(cells: Cells) -> list[str]:
    headers, rows = cells
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def render_markdown(summary: RunSummary, plots: list[str]) -> str:
    lines = ["# Discovery report", "", *(line for text in _intro(summary) for line in (text, ""))]
    lines += ["## Test: the selected algorithm against the seed and tuned task arithmetic", ""]
    lines += _md_table(test_cells(summary)) + ["", "## Iterations", ""]
    lines += _md_table(iteration_cells(summary)) + ["", f"## {_EXPERTS_TITLE}", ""]
    lines += _md_table(expert_cells(summary)) + ["", "## Proposals: per iteration, kind and arm", ""]
    lines += _md_table(proposal_cells(summary)) + [""]
    lines += [f"## {_ARMS_TITLE}", "", *_md_table(arm_cells(summary)), ""] if summary.arms else []
    lines += [f"## {_DIRECTIONS_TITLE}", "", *_md_table(direction_cells(summary)), ""] if summary.directions else []
    lines += ["## Top algorithms against references and baselines", ""]
    lines += _md_table(comparison_cells(summary)) + [""]
    lines += [f"![{p}]({p})" for p in plots] + [""]
    for r in summary.top:
        lines += [f"### {r.name} (iteration {r.iteration})", "", "```python", (r.code or "").rstrip(), "```", ""]
    return "\n".join(lines)


# -- HTML ---------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def _html_table(cells: Cells) -> str:
    headers, rows = cells
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(summary: RunSummary, plots: list[str]) -> str:
    intro = "".join(f"<p>{html.escape(t)}</p>" for t in _intro(summary))
    images = "".join(f'<img src="{html.escape(p)}" alt="{html.escape(p)}">' for p in plots)
    code = "".join(
        f"<h3>{html.escape(r.name)} (iteration {r.iteration})</h3><pre>{html.escape(r.code or '')}</pre>"
        for r in summary.top
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Discovery report</title>'
        f"<style>{_CSS}</style></head><body><h1>Discovery report</h1>{intro}"
        f"<h2>Test: the selected algorithm against the seed and tuned task arithmetic</h2>"
        f"{_html_table(test_cells(summary))}"
        f"<h2>Iterations</h2>{_html_table(iteration_cells(summary))}"
        f"<h2>{_EXPERTS_TITLE}</h2>{_html_table(expert_cells(summary))}"
        f"<h2>Proposals: per iteration, kind and arm</h2>{_html_table(proposal_cells(summary))}"
        + (f"<h2>{html.escape(_ARMS_TITLE)}</h2>{_html_table(arm_cells(summary))}" if summary.arms else "")
        + (f"<h2>{html.escape(_DIRECTIONS_TITLE)}</h2>{_html_table(direction_cells(summary))}" if summary.directions else "")
        + f"<h2>Top algorithms against references and baselines</h2>{_html_table(comparison_cells(summary))}"
        f"<h2>Plots</h2>{images}<h2>Code of the top algorithms</h2>{code or '<p>none yet</p>'}</body></html>\n"
    )


# -- terminal -----------------------------------------------------------------------------


# Shorter words for a terminal: rich wraps headers only at spaces, and 80 columns must hold a dozen of them.
_SHORT = {"iteration": "iter", "executable": "exec", "duplicates": "dup", "evaluated": "eval", "failures": "failed"}


def _rich(title: str, cells: Cells) -> Table:
    headers, rows = cells
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    for i, h in enumerate(headers):
        short = "full" if h.startswith("reached ") else _SHORT.get(h, h)
        # As narrow as its widest word, so rich wraps headers and cells at spaces rather than cutting numbers.
        width = max([len(w) for w in short.split()] + [len(w) for row in rows for w in row[i].split()])
        table.add_column(short, justify="left" if i == 0 else "right", min_width=width)
    for row in rows:
        table.add_row(*row)
    return table


def rich_tables(summary: RunSummary) -> list[Table]:
    """The iterations and the test comparison, for a terminal."""
    return [
        _rich("Discovery: per iteration", iteration_cells(summary)),
        _rich(_EXPERTS_TITLE, expert_cells(summary)),
        _rich("Proposals: per iteration, kind and arm", proposal_cells(summary)),
        *([_rich(_ARMS_TITLE, arm_cells(summary))] if summary.arms else []),
        *([_rich(_DIRECTIONS_TITLE, direction_cells(summary))] if summary.directions else []),
        _rich("Test: paired against the seed and tuned task arithmetic", test_cells(summary)),
    ]
