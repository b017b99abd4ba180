"""Archive schema 4: prompts stored once and read back, lineage columns, the artifacts index; versions 2 and 3 migrated in place."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from selfdev.archive import SCHEMA_VERSION, Archive, prompt_key
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord, CandidateStatus


PROMPT = json.dumps([{"role": "user", "content": "write merge()"}])


def test_prompt_is_stored_once_and_each_row_reads_it_back(tmp_path: Path):
    with Archive(tmp_path / "a.sqlite") as archive:
        first = archive.add(CandidateRecord(0, 0, "policy", prompt=PROMPT, reply="x", proposal="evolve", arm="control"))
        archive.add(CandidateRecord(0, 1, "ok", prompt=PROMPT, reply="y", proposal="repair", parent_id=first))
        archive.add(CandidateRecord(-1, 0, "ok", kind="reference", name="seed"))
        assert archive.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] == 1
        keys = [r[0] for r in archive.db.execute("SELECT prompt_id FROM candidates ORDER BY id")]
        assert keys == [prompt_key(PROMPT), prompt_key(PROMPT), None]
        a, b = archive.candidates(0)
        assert a.prompt == b.prompt == PROMPT and archive.references()[0].prompt is None
        assert (a.proposal, a.arm, a.parent_id) == ("evolve", "control", None)
        assert (b.proposal, b.arm, b.parent_id) == ("repair", "main", first)


def test_version_2_archive_is_migrated_with_its_prompts(tmp_path: Path):
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE candidates (
            id INTEGER PRIMARY KEY AUTOINCREMENT, iteration INTEGER NOT NULL, sample_index INTEGER NOT NULL,
            kind TEXT NOT NULL, name TEXT, params TEXT NOT NULL, generator TEXT, prompt TEXT, reply TEXT, code TEXT,
            status TEXT NOT NULL, reason TEXT, line INTEGER, fingerprint TEXT, duplicate_of INTEGER, dev TEXT,
            selection TEXT, test TEXT, timings TEXT NOT NULL, created_at REAL NOT NULL, UNIQUE (iteration, sample_index)
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    for i in range(3):
        db.execute(
            "INSERT INTO candidates (iteration, sample_index, kind, params, prompt, reply, status, timings, created_at) "
            "VALUES (0, ?, 'generated', '{}', ?, 'r', 'no_code', '{}', 0)",
            (i, PROMPT),
        )
    db.commit()
    db.close()

    with Archive(path) as archive:
        assert archive.meta("schema_version") == SCHEMA_VERSION == 4
        rows = archive.candidates(0)
        assert [c.prompt for c in rows] == [PROMPT] * 3
        assert {(c.proposal, c.arm, c.parent_id) for c in rows} == {("paper", "main", None)}
        assert archive.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] == 1
        assert archive.db.execute("SELECT COUNT(*) FROM candidates WHERE prompt IS NOT NULL").fetchone()[0] == 0
        archive.add(CandidateRecord(1, 0, "ok", prompt=PROMPT, reply="z"))
    with Archive(path) as again:  # a migrated archive opens as the current version
        assert len(again.candidates()) == 4 and again.candidates(1)[0].prompt == PROMPT


def as_schema_3(path: Path) -> None:
    """Turn the archive at `path` into schema 3 as selfdev wrote it before version 4, with the same rows.

    Version 4 only added the `artifacts` table: the candidates, prompts and meta tables are version 3's.
    """
    db = sqlite3.connect(path)
    db.execute("DROP TABLE artifacts")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def test_version_3_archive_is_migrated_and_indexes_artifacts(tmp_path: Path):
    path = tmp_path / "v3.sqlite"
    dev = Evaluation.of(["p0", "p1"], [True, False])
    with Archive(path) as archive:
        archive.add(CandidateRecord(0, 0, "ok", prompt=PROMPT, code="c", fingerprint="f", dev=dev))
        archive.add(CandidateRecord(0, 1, "lost", reason="its actor died twice"))
    as_schema_3(path)
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "artifacts" not in tables
    with Archive(path) as archive:
        assert archive.meta("schema_version") == SCHEMA_VERSION == 4
        ok, lost = archive.candidates(0)
        assert (ok.status, ok.dev, ok.prompt) == (CandidateStatus.OK, dev, PROMPT)
        assert lost.status is CandidateStatus.LOST and f"{lost.status}" == "lost"
        assert archive.artifacts() == []
        archive.index("samples", "generator/iter-0/samples.jsonl", iteration=0, count=2)
        archive.index("samples", "generator/iter-0/samples.jsonl", iteration=0, count=3)  # again: replaced
    with Archive(path) as again:
        (samples,) = again.artifacts("samples")
        assert (samples.path, samples.iteration, samples.detail) == ("generator/iter-0/samples.jsonl", 0, {"count": 3})


def test_candidate_status_is_a_superset_of_the_sandboxs():
    from sandbox import Status

    assert {s.value for s in Status} < {s.value for s in CandidateStatus}
    assert all(CandidateStatus(s.value) == s for s in Status)
