"""Loading the raw benchmark rows, from a local directory or the Hugging Face hub.

A local directory has the layout of the project's offline copies::

    <data-dir>/gsm8k/train.jsonl   question, answer ("... #### N")
    <data-dir>/gsm8k/test.jsonl
    <data-dir>/math/test.jsonl     problem, level, type, solution
    <data-dir>/math/train.jsonl    the same fields (optional: only debate training on MATH reads it)

Without one, rows come from the hub through `datasets.load_dataset`, which caches
them. The rows are returned as plain dicts with the same fields either way, so the
tasks never know where they came from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from evals.errors import DataError

DATA_DIR_ENV = "SELFDEV_DATA_DIR"

GSM8K_HUB = ("openai/gsm8k", "main")
# The original Hendrycks upload is gone from the hub; EleutherAI's mirror keeps one
# config per subject with the original 7,500-problem train and 5,000-problem test splits.
MATH_HUB = "EleutherAI/hendrycks_math"
MATH_HUB_CONFIGS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)

_GSM8K_FIELDS = ("question", "answer")
_MATH_FIELDS = ("problem", "level", "type", "solution")


def resolve_data_dir(arg: str | os.PathLike[str] | None) -> Path | None:
    """The local data directory to use: `arg` if given, else $SELFDEV_DATA_DIR, else None (the hub).

    A directory that was asked for but does not exist is an error rather than a
    silent fall-back to the network.
    """
    raw = os.fspath(arg) if arg is not None else os.environ.get(DATA_DIR_ENV, "")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        source = "--data-dir" if arg is not None else f"${DATA_DIR_ENV}"
        raise DataError(f"data directory {path} (from {source}) does not exist")
    return path


def load_gsm8k(split: Literal["train", "test"], data_dir: str | os.PathLike[str] | None = None) -> list[dict]:
    """GSM8K rows (`question`, `answer`) of the original train or test split, in source order."""
    if split not in ("train", "test"):
        raise ValueError(f"GSM8K has splits train and test, not {split!r}")
    local = resolve_data_dir(data_dir)
    if local is not None:
        return read_jsonl(local / "gsm8k" / f"{split}.jsonl", _GSM8K_FIELDS)
    return _from_hub(*GSM8K_HUB, split=split, fields=_GSM8K_FIELDS)


def load_math(split: Literal["train", "test"], data_dir: str | os.PathLike[str] | None = None) -> list[dict]:
    """MATH rows (`problem`, `level`, `type`, `solution`) of the original train (7,500) or test (5,000) split,
    grouped by subject."""
    if split not in ("train", "test"):
        raise ValueError(f"MATH has splits train and test, not {split!r}")
    local = resolve_data_dir(data_dir)
    if local is not None:
        return read_jsonl(local / "math" / f"{split}.jsonl", _MATH_FIELDS)
    rows: list[dict] = []
    for config in MATH_HUB_CONFIGS:
        rows.extend(_from_hub(MATH_HUB, config, split=split, fields=_MATH_FIELDS))
    return rows


def read_jsonl(path: Path, fields: tuple[str, ...]) -> list[dict]:
    """Rows of a JSONL file, each checked to carry `fields`; problems name the path and line."""
    if not path.is_file():
        raise DataError(
            f"{path} not found (the data directory needs gsm8k/*.jsonl and math/test.jsonl, "
            "and math/train.jsonl to train on MATH)"
        )
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in fields if k not in row]
            if missing:
                raise DataError(f"{path}:{lineno}: missing field(s) {', '.join(missing)}")
            rows.append({k: row[k] for k in fields})
    if not rows:
        raise DataError(f"{path} is empty")
    return rows


def _from_hub(name: str, config: str, *, split: str, fields: tuple[str, ...]) -> list[dict]:
    # Imported here: `datasets` is slow to import and only this path needs it.
    try:
        from datasets import load_dataset

        dataset = load_dataset(name, config, split=split)
        return [{k: row[k] for k in fields} for row in dataset]
    except Exception as e:  # network, auth, schema: all end as one readable line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(
            f"could not load {name} ({config}, {split}) from the Hugging Face hub: {reason}; "
            f"pass --data-dir or set ${DATA_DIR_ENV} to a local copy"
        ) from e
