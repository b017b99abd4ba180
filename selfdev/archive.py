"""The run archive: one SQLite row per candidate, written the moment it finishes.

It stores and queries; choosing DPO pairs, fingerprinting and statistics live
elsewhere (`selfdev.scores` ranks). WAL mode lets a reader (report, export)
look while the loop writes; the loop's process is the only writer.

Every score is kept as an `Evaluation` (which problems were right), so any two
rows compare paired after the run. `SCHEMA_VERSION` is stored in `meta`; an
archive from before per-problem outcomes (version 1) cannot be resumed or
reported, and says so. Older versions are migrated in place, one step at a
time: 2 to 3 (new columns, prompts moved into their table), 3 to 4 (the
`artifacts` index of what the run produced: experts, baselines, samples,
adapters and DPO runs, by kind and path).

Prompts are stored once, in `prompts`, keyed by the sha256 of their text; a
candidate row keeps the key (`prompt_id`), and reading a row gives the text
back as `CandidateRecord.prompt`, so DPO trains on the prompt that produced a reply.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from selfdev.errors import UserError
from selfdev.scores import Evaluation, rank_key
from selfdev.stages import CandidateRecord

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    iteration     INTEGER NOT NULL,      -- -1: references (seed, task arithmetic), -2: tuned baselines
    sample_index  INTEGER NOT NULL,      -- position in the iteration's sampled batch; with iteration, the resume key
    kind          TEXT NOT NULL,         -- 'generated', 'reference' or 'baseline'
    name          TEXT,
    params        TEXT NOT NULL,         -- JSON {name: value}: a baseline's tuned parameters
    generator     TEXT,                  -- the checkpoint that sampled it ('' for the base generator)
    prompt_id     TEXT,                  -- sha256 of the prompt it was sampled from (table prompts)
    proposal      TEXT NOT NULL DEFAULT 'paper',  -- 'paper', 'evolve', 'repair' or 'revise': how its prompt was made
    arm           TEXT NOT NULL DEFAULT 'main',   -- 'main', or 'control': sampled by the generator without DPO
    parent_id     INTEGER,               -- a repair or revision: the candidate it asks again
    reply         TEXT,
    code          TEXT,
    status        TEXT NOT NULL,         -- selfdev.stages.CandidateStatus: the sandbox's (ok, syntax, policy, runtime, timeout, memory, bad_output), 'no_code', or 'lost' (its Ray actor died twice)
    reason        TEXT,
    line          INTEGER,
    fingerprint   TEXT,
    duplicate_of  INTEGER,               -- the candidate whose evaluation was reused
    dev           TEXT,                  -- JSON Evaluation on the search-dev problems it reached in the cascade
    selection     TEXT,                  -- JSON Evaluation on the selection-dev slice (finalists only)
    test          TEXT,                  -- JSON Evaluation on test (the selected algorithm, references, baselines)
    timings       TEXT NOT NULL,         -- JSON {stage: seconds}
    created_at    REAL NOT NULL,
    UNIQUE (iteration, sample_index)
);
CREATE INDEX IF NOT EXISTS by_fingerprint ON candidates (fingerprint);
CREATE TABLE IF NOT EXISTS prompts (sha256 TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Added in version 4.
ARTIFACTS = """
CREATE TABLE IF NOT EXISTS artifacts (
    kind        TEXT NOT NULL,          -- selfdev.run_dir.ARTIFACTS: experts, baselines, samples, repairs, adapter, ...
    path        TEXT NOT NULL,          -- relative to the run folder; absolute when outside it (shared experts, baselines)
    iteration   INTEGER,                -- the iteration it belongs to (samples, repairs, adapters)
    detail      TEXT NOT NULL,          -- JSON {name: value}: what it holds (counts, DPO metrics, ...)
    created_at  REAL NOT NULL,
    PRIMARY KEY (kind, path)
)
"""

# Columns version 3 added to version 2's table, with their declarations.
_ADDED_IN_3 = {
    "prompt_id": "TEXT",
    "proposal": "TEXT NOT NULL DEFAULT 'paper'",
    "arm": "TEXT NOT NULL DEFAULT 'main'",
    "parent_id": "INTEGER",
}
_EVALUATIONS = ("dev", "selection", "test")
_JSON_FIELDS = ("params", "timings")


class ArchiveVersionError(UserError):
    """An archive written by a selfdev whose schema this one cannot continue."""


@dataclass(frozen=True)
class Artifact:
    """A file or folder a run produced, as the archive indexes it."""

    kind: str
    path: str
    iteration: int | None
    detail: dict[str, Any]
    created_at: float


_COLUMNS = [f for f in CandidateRecord.__dataclass_fields__ if f not in ("id", "prompt")] + ["prompt_id"]


def prompt_key(prompt: str) -> str:
    """The key a prompt is stored under: the sha256 of its text."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _row(candidate: CandidateRecord) -> list[Any]:
    values = []
    for name in _COLUMNS:
        if name == "prompt_id":
            values.append(None if candidate.prompt is None else prompt_key(candidate.prompt))
            continue
        value = getattr(candidate, name)
        if name in _EVALUATIONS:
            value = None if value is None else value.to_json()
        elif name in _JSON_FIELDS:
            value = json.dumps(value)
        elif name == "status":
            value = value.value
        values.append(value)
    return values


class Archive:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each insert is durable at once
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._check_version()
        self.db.executescript(SCHEMA)
        self.db.execute(ARTIFACTS)
        self.set_meta("schema_version", SCHEMA_VERSION)

    def _check_version(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "candidates" not in tables:
            return  # a new archive
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        version = json.loads(row["value"]) if row else 1
        if version == 2:
            self._migrate_2_to_3()
            version = 3
        if version == 3:
            self._migrate_3_to_4()
            version = 4
        if version != SCHEMA_VERSION:
            self.db.close()
            raise ArchiveVersionError(
                f"{self.path} has archive schema {version}, this selfdev reads {SCHEMA_VERSION} "
                "(version 1 kept no per-problem outcomes, so its scores cannot be compared paired); "
                "it cannot be resumed or reported: start a new run with another --out"
            )

    def _migrate_2_to_3(self) -> None:
        """Add version 3's columns; move each row's prompt into `prompts` and keep its key."""
        with self.db:
            self.db.execute("BEGIN")
            for column, declaration in _ADDED_IN_3.items():
                self.db.execute(f"ALTER TABLE candidates ADD COLUMN {column} {declaration}")
            self.db.execute("CREATE TABLE IF NOT EXISTS prompts (sha256 TEXT PRIMARY KEY, text TEXT NOT NULL)")
            for row in self.db.execute("SELECT DISTINCT prompt FROM candidates WHERE prompt IS NOT NULL").fetchall():
                key = prompt_key(row["prompt"])
                self.db.execute("INSERT OR IGNORE INTO prompts (sha256, text) VALUES (?, ?)", (key, row["prompt"]))
                self.db.execute("UPDATE candidates SET prompt_id = ?, prompt = NULL WHERE prompt = ?", (key, row["prompt"]))
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (json.dumps(3),))

    def _migrate_3_to_4(self) -> None:
        """Add the index of what the run produced (`artifacts`); a resumed run fills it as it meets them."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(ARTIFACTS)
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (json.dumps(4),))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------

    def add(self, candidate: CandidateRecord) -> int:
        """Insert a row; returns its id (`candidate.with_id(id)` is the row as stored)."""
        if candidate.prompt is not None:
            key = prompt_key(candidate.prompt)
            self.db.execute("INSERT OR IGNORE INTO prompts (sha256, text) VALUES (?, ?)", (key, candidate.prompt))
        marks = ", ".join("?" * len(_COLUMNS))
        cur = self.db.execute(f"INSERT INTO candidates ({', '.join(_COLUMNS)}) VALUES ({marks})", _row(candidate))
        return cur.lastrowid

    def set_evaluation(self, candidate_id: int, split: str, evaluation: Evaluation) -> None:
        """Record a later evaluation of a row: its `selection` or `test` score."""
        if split not in ("selection", "test"):
            raise ValueError(f"only selection and test evaluations are added later, not {split!r}")
        self.db.execute(f"UPDATE candidates SET {split} = ? WHERE id = ?", (evaluation.to_json(), candidate_id))

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def index(self, kind: str, path: str | Path, *, iteration: int | None = None, **detail: Any) -> None:
        """Record that the run produced `path` (kind: see selfdev.run_dir.ARTIFACTS); again for the same path replaces it."""
        self.db.execute(
            "INSERT OR REPLACE INTO artifacts (kind, path, iteration, detail, created_at) VALUES (?, ?, ?, ?, ?)",
            (kind, str(path), iteration, json.dumps(detail), time.time()),
        )

    # -- reading ----------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def artifacts(self, kind: str | None = None) -> list[Artifact]:
        """What the run produced, in the order it was indexed."""
        where, args = ("kind = ?", (kind,)) if kind is not None else ("1", ())
        rows = self.db.execute(f"SELECT * FROM artifacts WHERE {where} ORDER BY created_at, rowid", args)
        return [Artifact(r["kind"], r["path"], r["iteration"], json.loads(r["detail"]), r["created_at"]) for r in rows]

    def _rows(self, where: str = "1", args: tuple = ()) -> Iterator[CandidateRecord]:
        columns = ", ".join(f"c.{name}" for name in ["id", *_COLUMNS])
        query = (
            f"SELECT {columns}, p.text AS prompt FROM candidates AS c LEFT JOIN prompts AS p ON p.sha256 = c.prompt_id "
            f"WHERE {where} ORDER BY c.id"
        )
        for row in self.db.execute(query, args):
            data = dict(row)
            del data["prompt_id"]
            for key in _JSON_FIELDS:
                data[key] = json.loads(data[key])
            for key in _EVALUATIONS:
                data[key] = Evaluation.from_json(data[key])
            yield CandidateRecord(**data)

    def candidates(self, iteration: int | None = None, kind: str | None = "generated") -> list[CandidateRecord]:
        clauses, args = [], []
        if iteration is not None:
            clauses.append("iteration = ?")
            args.append(iteration)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        return list(self._rows(" AND ".join(clauses) or "1", tuple(args)))

    def references(self) -> list[CandidateRecord]:
        return self.candidates(kind="reference")

    def baselines(self) -> list[CandidateRecord]:
        return self.candidates(kind="baseline")

    def get(self, candidate_id: int) -> CandidateRecord | None:
        return next(self._rows("id = ?", (candidate_id,)), None)

    def finished_indices(self, iteration: int) -> set[int]:
        rows = self.db.execute("SELECT sample_index FROM candidates WHERE iteration = ?", (iteration,))
        return {r["sample_index"] for r in rows}

    def by_fingerprint(self, fingerprint: str) -> CandidateRecord | None:
        """The first evaluated candidate with this fingerprint (the one whose evaluation is reused)."""
        return next(self._rows("fingerprint = ? AND duplicate_of IS NULL AND dev IS NOT NULL", (fingerprint,)), None)

    def top(self, k: int, iteration: int | None = None) -> list[CandidateRecord]:
        """The best k evaluated, non-duplicate generated candidates, by `selfdev.scores.rank_key`."""
        pool = [c for c in self.candidates(iteration) if c.dev is not None and c.duplicate_of is None]
        return sorted(pool, key=rank_key)[:k]
