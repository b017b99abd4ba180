"""Get discovered merge algorithms out to users: readable files, mergekit plugins, example configs.

For each algorithm `export_algorithms` writes, into one folder:

- `<name>.py`: the function verbatim under a docstring with its scores and provenance;
- `<name>_mergekit.py`: a module that registers it as mergekit merge method `<name>`
  (run through selfdev's sandbox) and, run as a script, behaves like `mergekit-yaml`;
- `<name>.yaml`: a mergekit config using it on the seed and experts it was found on;

and a `README.md` index of everything exported.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Sequence

import yaml
from pydantic import BaseModel, Field

from selfdev.errors import UserError
from selfdev.merging import algorithm_file
from selfdev.merging.sandboxed import DEFAULT_FILTER
from selfdev.run_dir import RunDir

class ExportError(UserError, ValueError):
    """Nothing to export: no run archive, or no evaluated algorithm in it."""


class ExportedAlgorithm(BaseModel):
    """One discovered algorithm with the provenance its exported files document (from the run archive's row)."""

    code: str
    dev_score: float
    dev_n: int | None = Field(None, ge=1, description="search-dev problems the dev score is on")
    test_score: float | None = None
    iteration: int = Field(ge=0)
    fingerprint: str = Field(min_length=1)
    seed_model: str
    experts: list[str]
    found_at: dt.datetime
    task: str = "gsm8k"

    @property
    def name(self) -> str:
        """A stable method name: the same algorithm gets the same name in every export."""
        return "selfdev_" + re.sub(r"[^0-9a-z]", "", self.fingerprint.lower())[:12]


def _docstring(c: ExportedAlgorithm, filter: str) -> str:
    test = f"{c.test_score:.4f}" if c.test_score is not None else "not measured"
    dev = f"{c.dev_score:.4f}" + (f" on {c.dev_n} problems" if c.dev_n else "")
    experts = "\n".join(f"    - {e}" for e in c.experts)
    return f"""Merge algorithm `{c.name}`, discovered by selfdev (Self-Developing model merging).

Scores ({c.task}): dev {dev}, test {test}
Found in iteration {c.iteration} on {c.found_at:%Y-%m-%d %H:%M} UTC
Fingerprint: {c.fingerprint}
Seed model: {c.seed_model}
Experts:
{experts}

Contract: `merge` is called once per parameter tensor selected by the filter
(`{filter}` when found) with the task vectors (expert - seed) of that tensor, all of
one shape, and returns one tensor of that shape, which is added to the seed's tensor.

Apply it to other models (runs in selfdev's sandbox, streamed through mergekit):
    selfdev apply --algorithm {c.name}.py --base SEED --experts A B C --out merged/
or with mergekit's own YAML format:
    selfdev apply --config {c.name}.yaml --out merged/"""


def _plugin(c: ExportedAlgorithm) -> str:
    return f'''"""mergekit plugin: importing this module registers merge method `{c.name}`.

The algorithm is `{c.name}.py` next to this file. mergekit calls it through
selfdev's sandbox (a separate, restricted worker process), never in this process.

    python {c.name}_mergekit.py {c.name}.yaml ./merged    # same options as mergekit-yaml
    import {c.name}_mergekit                               # then mergekit.merge.run_merge(...)
"""

from pathlib import Path

from selfdev.merging import register_algorithm_file

METHOD = register_algorithm_file(Path(__file__).with_name("{c.name}.py"))

if __name__ == "__main__":
    from mergekit.scripts.run_yaml import main

    main()
'''


def _example_config(c: ExportedAlgorithm, filter: str) -> str:
    config = {
        "merge_method": c.name,
        "base_model": c.seed_model,
        "models": [{"model": e} for e in c.experts],
        "parameters": {"filter": filter, "seed": 0},
    }
    header = (
        f"# Merge with {c.name} (see {c.name}.py), on the models it was found on.\n"
        f"# selfdev apply --config {c.name}.yaml --out merged/   (resolves embedded seed names too)\n"
        f"# python {c.name}_mergekit.py {c.name}.yaml merged/    (models must be folders or hub ids)\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False)


def _index(candidates: Sequence[ExportedAlgorithm]) -> str:
    lines = [
        "# Exported merge algorithms",
        "",
        "| rank | method | dev | test | iteration | fingerprint | found | files |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rank, c in enumerate(candidates, 1):
        test = f"{c.test_score:.4f}" if c.test_score is not None else "-"
        files = f"[{c.name}.py]({c.name}.py), [plugin]({c.name}_mergekit.py), [config]({c.name}.yaml)"
        lines.append(
            f"| {rank} | `{c.name}` | {c.dev_score:.4f} | {test} | {c.iteration} | `{c.fingerprint[:12]}` "
            f"| {c.found_at:%Y-%m-%d} | {files} |"
        )
    return "\n".join(lines) + "\n"


def export_algorithms(candidates: Sequence[ExportedAlgorithm], out_dir: str | Path, *, filter: str = DEFAULT_FILTER) -> list[Path]:
    """Write the files of each candidate (in the given order, best first) and the index; returns the .py paths."""
    if not candidates:
        raise ExportError("no candidates to export")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for c in candidates:
        # Refuse code the sandbox could not read back, before anything is written for it.
        text = algorithm_file.render(c.code, _docstring(c, filter))
        algorithm_file.check_source(text, f"candidate {c.fingerprint}")
        path = out / f"{c.name}.py"
        path.write_text(text, encoding="utf-8")
        (out / f"{c.name}_mergekit.py").write_text(_plugin(c), encoding="utf-8")
        (out / f"{c.name}.yaml").write_text(_example_config(c, filter), encoding="utf-8")
        written.append(path)
    (out / "README.md").write_text(_index(candidates), encoding="utf-8")
    return written


def candidates_from_archive(archive_path: Path, k: int) -> list[ExportedAlgorithm]:
    """The k best generated algorithms of a discovery run, as its archive ranks them (`selfdev.scores.rank_key`)."""
    from selfdev.archive import Archive

    with Archive(archive_path) as archive:
        seed, experts, task = archive.meta("seed", ""), archive.meta("experts", []), archive.meta("task", "gsm8k")
        return [
            ExportedAlgorithm(
                code=c.code,
                dev_score=c.dev_score,
                dev_n=c.dev_n,
                test_score=c.test_score,
                iteration=c.iteration,
                fingerprint=c.fingerprint,
                seed_model=seed,
                experts=experts,
                found_at=dt.datetime.fromtimestamp(c.created_at, tz=dt.timezone.utc),
                task=task,
            )
            for c in archive.top(k)
            if c.code and c.fingerprint
        ]


def load_top_candidates(run: str | Path, k: int) -> list[ExportedAlgorithm]:
    """The k best algorithms of a discovery run: its folder or its archive.sqlite."""
    run = Path(run)
    archive = RunDir(run).archive if run.is_dir() else run
    if not archive.is_file():
        raise ExportError(f"no run archive at {archive}; pass a `selfdev discover` run folder or its archive.sqlite")
    found = candidates_from_archive(archive, k)
    if not found:
        raise ExportError(f"{run} has no evaluated algorithm to export yet")
    return found
