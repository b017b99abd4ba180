"""Loading the benchmarks from a local directory, and the errors a bad directory gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evals.data import DATA_DIR_ENV, load_gsm8k, load_math, resolve_data_dir
from evals.errors import DataError, UnknownSplitError, UnknownTaskError
from evals.tasks import TASKS, get_task
from evals.tasks.gsm8k import FEWSHOT as GSM8K_FEWSHOT
from evals.tasks.hendrycks_math import FEWSHOT as MATH_FEWSHOT

DATA = Path(os.environ.get("SELFDEV_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(
    not (DATA / "gsm8k" / "train.jsonl").is_file() or not (DATA / "math" / "test.jsonl").is_file(),
    reason=f"benchmark data not found at {DATA}",
)


@needs_data
def test_gsm8k_rows_and_examples() -> None:
    assert len(load_gsm8k("test", DATA)) == 1319
    assert len(load_gsm8k("train", DATA)) == 7473
    ex = {e.id: e for e in get_task("gsm8k").examples("test", DATA)}["gsm8k/test/0"]
    assert ex.question.startswith("Janet\u2019s ducks lay 16 eggs")
    assert ex.gold == "18"
    assert ex.meta["split"] == "test"


@needs_data
def test_gsm8k_train_split_is_whole_and_limited() -> None:
    task = get_task("gsm8k")
    assert len(task.examples("train", DATA, limit=5)) == 5
    assert all(e.id.startswith("gsm8k/train/") for e in task.examples("train", DATA, limit=50))


@needs_data
def test_math_rows_and_golds() -> None:
    assert len(load_math("test", DATA)) == 5000
    examples = get_task("math").examples("dev", DATA) + get_task("math").examples("test", DATA)
    assert all(ex.gold for ex in examples)
    assert all(ex.meta["level"] in {1, 2, 3, 4, 5} for ex in examples)
    # Our gold (last \boxed{} of the solution) agrees with MATH-500's curated answers.
    by_question = {ex.question: ex.gold for ex in examples}
    with (DATA / "math" / "test500.jsonl").open() as f:
        curated = [json.loads(line) for line in f]
    assert all(by_question[row["problem"]] == row["answer"].strip() for row in curated)


@needs_data
def test_fewshot_shots_come_from_train_and_never_from_test() -> None:
    train = load_gsm8k("train", DATA)
    for shot_id, question, solution in GSM8K_FEWSHOT:
        row = train[int(shot_id.rsplit("/", 1)[1])]
        assert row["question"] == question
        assert row["answer"].rsplit("####", 1)[1].strip() == get_task("gsm8k").extract(solution)
    gsm8k_test = {row["question"] for row in load_gsm8k("test", DATA)}
    math_test = {row["problem"] for row in load_math("test", DATA)}
    assert not {q for _, q, _ in GSM8K_FEWSHOT} & gsm8k_test
    assert not {q for q, _ in MATH_FEWSHOT} & math_test


def test_missing_data_dir_is_a_data_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match="nope"):
        resolve_data_dir(missing)
    with pytest.raises(DataError, match="nope"):
        get_task("gsm8k").examples("dev", missing)


def test_missing_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"math[/\\]test\.jsonl"):
        get_task("math").examples("dev", tmp_path)


def test_malformed_rows_are_data_errors(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{broken\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2"):
        load_gsm8k("test", tmp_path)
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q"}\n')
    with pytest.raises(DataError, match="answer"):
        load_gsm8k("test", tmp_path)


def test_truncated_copy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match="expected 1319"):
        get_task("gsm8k").examples("dev", tmp_path)


def test_resolve_data_dir_prefers_the_argument_then_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_data_dir(None) is None
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert resolve_data_dir(str(other)) == other
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataError, match=DATA_DIR_ENV):
        resolve_data_dir(None)


def test_unknown_task_lists_the_valid_names() -> None:
    with pytest.raises(UnknownTaskError) as err:
        get_task("gsm9k")
    assert all(name in str(err.value) for name in ("arithmetic", "gsm8k", "math"))


def test_registry() -> None:
    assert set(TASKS) == {"gsm8k", "math", "arithmetic"}
    assert get_task(" GSM8K ") is TASKS["gsm8k"]
    for task in TASKS.values():
        assert len(task.fewshot()) == 5
        assert task.stop and task.max_new_tokens > 0


def test_unknown_split_and_bad_limit() -> None:
    with pytest.raises(UnknownSplitError, match="dev, test, train"):
        get_task("math").examples("validation", DATA)
    with pytest.raises(ValueError):
        get_task("arithmetic").examples("dev", limit=-1)


def test_hub_path_loads_every_math_subject_and_turns_failures_into_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No network here: stand in for `datasets` to check what the hub path asks for and returns.
    import sys
    import types

    calls: list[tuple] = []

    def fake_load_dataset(name: str, config: str, split: str) -> list[dict]:
        calls.append((name, config, split))
        return [{"problem": f"{config} p", "level": "Level 1", "type": config, "solution": "\\boxed{1}", "x": 0}]

    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=fake_load_dataset))
    rows = load_math("test", None)
    assert [c[0] for c in calls] == ["EleutherAI/hendrycks_math"] * 7
    assert {c[2] for c in calls} == {"test"} and len(rows) == 7 and "x" not in rows[0]

    # MATH train (debate finetuning on MATH never touches MATH test): its own ids, seeded order.
    calls.clear()
    rows = load_math("train", None)
    assert {c[2] for c in calls} == {"train"} and len(calls) == 7
    monkeypatch.setattr("evals.tasks.hendrycks_math._SOURCE_SIZES", {"test": 5000, "train": 7})
    train = get_task("math").examples("train", None)
    assert len(train) == 7 and all(ex.id.startswith("math/train/") for ex in train)
    assert get_task("math").examples("train", None, limit=3) == train[:3]

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("no route to host\nlong traceback text")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=offline))
    with pytest.raises(DataError) as err:
        load_gsm8k("test", None)
    assert "\n" not in str(err.value) and "openai/gsm8k" in str(err.value) and "--data-dir" in str(err.value)
