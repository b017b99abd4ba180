"""Files and folders that appear whole or not at all: built beside their target, then renamed over it.

The one atomic-write helper of the project (it sits in the lowest layer, so
evals, seeds and selfdev all use it): a killed process leaves either the old
file or the new one, never half of either, and a resumed run can trust what
it finds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A path beside `target` to build a file or a folder at; it replaces `target` whole when the block ends.

    A stale one from a killed run is cleared first; on an error it is removed and `target` is left as it was.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.partial")
    _remove(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    if tmp.is_dir() and target.exists():
        _remove(target)  # rename() replaces a file, not a folder that is not empty
    os.replace(tmp, target)


def write_text_atomic(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, data: object) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
