"""`selfdev report RUN`: plots and tables of one discovery run, written to RUN/report/.

    data.py    reads the run folder into numbers (RunSummary)
    plots.py   the three figures
    render.py  the tables as HTML, Markdown and a rich table
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from selfdev.report.data import IterationRow, RunSummary, collect, summary_rows
from selfdev.report.plots import write_plots
from selfdev.report.render import render_html, render_markdown, rich_tables
from selfdev.run_dir import RunDir

__all__ = ["IterationRow", "RunSummary", "collect", "print_summary", "summary_rows", "write_report"]


def write_report(run_dir: Path, top_k: int = 10) -> Path:
    """Write plots, index.html, summary.md and summary.json to `run_dir`/report; returns the path of index.html."""
    summary = collect(run_dir, top_k=top_k)
    out = RunDir(Path(run_dir)).report
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(summary, out)
    (out / "summary.json").write_text(json.dumps({**summary.to_dict(), "plots": plots}, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(render_markdown(summary, plots), encoding="utf-8")
    index = out / "index.html"
    index.write_text(render_html(summary, plots), encoding="utf-8")
    return index


def print_summary(run_dir: Path, console: Console | None = None) -> None:
    """Print the per-iteration and test tables of the run in `run_dir` (shown at the end of `selfdev discover`)."""
    summary = collect(run_dir)
    console = console or Console()
    for table in rich_tables(summary):
        console.print(table)
    for note in summary.notes:
        console.print(note)
