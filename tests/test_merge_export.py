"""Export: readable algorithm files, mergekit plugins, example configs, index, candidate loading."""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util

import pytest
import yaml
from mergekit import merge_methods

from selfdev.archive import Archive
from selfdev.export import ExportedAlgorithm, ExportError, export_algorithms, load_top_candidates
from selfdev.merging.algorithm_file import AlgorithmFileError, check_source, read_algorithm
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord

CODE = '''def merge(task_vectors):
    """Mean of the task vectors, scaled."""
    stacked = torch.stack(task_vectors)
    return 0.5 * stacked.mean(dim=0)
'''


def candidate(fingerprint="3fa2c1d9e0b7aa11", dev=0.41, iteration=3, code=CODE, experts=None) -> ExportedAlgorithm:
    return ExportedAlgorithm(
        code=code,
        dev_score=dev,
        test_score=0.398,
        iteration=iteration,
        fingerprint=fingerprint,
        seed_model="qwen2.5-coder-0.5b-instruct",
        experts=experts or ["/models/expert-a", "/models/expert-b"],
        found_at=dt.datetime(2025, 11, 23, 19, 40),
    )


def test_export_writes_documented_files(tmp_path):
    (path,) = export_algorithms([candidate()], tmp_path)
    assert path.name == "selfdev_3fa2c1d9e0b7.py"
    text = path.read_text()
    doc = ast.get_docstring(ast.parse(text))
    for needle in ("dev 0.4100", "test 0.3980", "iteration 3", "3fa2c1d9e0b7aa11", "qwen2.5-coder", "/models/expert-b", "2025-11-23"):
        assert needle in doc
    # Plain Python a user can import, holding the algorithm verbatim; the sandbox runs the file as it is.
    compile(text, str(path), "exec")
    assert CODE.strip() in text
    assert read_algorithm(path) == ("selfdev_3fa2c1d9e0b7", text)
    name = "selfdev_3fa2c1d9e0b7"
    config = yaml.safe_load((tmp_path / "selfdev_3fa2c1d9e0b7.yaml").read_text())
    assert config["merge_method"] == name and config["parameters"]["filter"] == "mlp"
    assert [m["model"] for m in config["models"]] == ["/models/expert-a", "/models/expert-b"]
    index = (tmp_path / "README.md").read_text()
    assert "| 1 | `selfdev_3fa2c1d9e0b7` | 0.4100 | 0.3980 | 3 |" in index


def test_docstring_survives_quotes_and_backslashes(tmp_path):
    (path,) = export_algorithms([candidate(experts=[r"C:\models\x", 'say """hi"""'])], tmp_path)
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert r"C:\models\x" in doc and "say '''hi'''" in doc


def test_plugin_module_registers_the_method(tmp_path):
    export_algorithms([candidate(fingerprint="feedface00112233")], tmp_path)
    plugin = tmp_path / "selfdev_feedface0011_mergekit.py"
    spec = importlib.util.spec_from_file_location("selfdev_feedface0011_mergekit", plugin)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.METHOD == "selfdev_feedface0011"
    method = merge_methods.get(module.METHOD)
    assert {p.name for p in method.spec.parameters} == {"filter", "seed"}


def evaluated(index: int, fingerprint: str, right: int, n: int = 10, **fields) -> CandidateRecord:
    dev = Evaluation.of([f"p{i}" for i in range(n)], [i < right for i in range(n)])
    return CandidateRecord(1, index, "ok", code=CODE, fingerprint=fingerprint, dev=dev, **fields)


def test_top_candidates_come_from_the_run_archive_ranked_by_scores(tmp_path):
    run = tmp_path / "run"
    with Archive(run / "archive.sqlite") as archive:
        archive.set_meta("seed", "tiny-seed")
        archive.set_meta("experts", ["a", "b"])
        first = archive.add(evaluated(0, "aaa", 3))
        archive.add(evaluated(1, "bbb", 5))
        archive.add(evaluated(2, "aaa", 3, duplicate_of=first))  # the same function: not a second algorithm
        archive.add(evaluated(3, "ccc", 4, n=20))  # more problems rank first (selfdev.scores.rank_key)
        archive.add(CandidateRecord(1, 4, "syntax", code="def merge(:"))
    top = load_top_candidates(run, 2)
    assert [(c.fingerprint, c.dev_score, c.dev_n) for c in top] == [("ccc", 0.2, 20), ("bbb", 0.5, 10)]
    assert top[0].seed_model == "tiny-seed" and top[0].experts == ["a", "b"]
    assert [c.fingerprint for c in load_top_candidates(run / "archive.sqlite", 5)] == ["ccc", "bbb", "aaa"]


def test_candidate_errors(tmp_path):
    with pytest.raises(ExportError, match="no run archive"):
        load_top_candidates(tmp_path, 3)
    Archive(tmp_path / "archive.sqlite").close()
    with pytest.raises(ExportError, match="no evaluated algorithm"):
        load_top_candidates(tmp_path, 3)
    with pytest.raises(ExportError, match="no candidates to export"):
        export_algorithms([], tmp_path / "out")
    with pytest.raises(AlgorithmFileError, match="no top-level function named 'merge'"):
        export_algorithms([candidate(code="def blend(x):\n    return x[0]\n")], tmp_path / "out")


def test_algorithm_file_errors(tmp_path):
    with pytest.raises(AlgorithmFileError, match="broken.py: line 1: syntax"):
        check_source("def merge(:\n", "broken.py")
    with pytest.raises(AlgorithmFileError, match="evil.py: line 2: policy: import of 'os' is not allowed"):
        check_source("def merge(task_vectors):\n    import os\n    return task_vectors[0]\n", "evil.py")
    with pytest.raises(AlgorithmFileError, match="cannot read"):
        read_algorithm(tmp_path / "missing.py")


def test_header_imports_are_not_repeated(tmp_path):
    code = "import torch\n\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n"
    (path,) = export_algorithms([candidate(code=code)], tmp_path)
    text = path.read_text()
    assert text.count("import torch") == 1 and text.count("from torch import Tensor") == 1


def test_algorithm_names_cannot_shadow_methods(tmp_path):
    from selfdev.merging import register_algorithm, register_algorithm_file

    (tmp_path / "ties.py").write_text(CODE)
    with pytest.raises(AlgorithmFileError, match="'ties' already exists in mergekit"):
        register_algorithm_file(tmp_path / "ties.py")
    register_algorithm("selfdev_twice", CODE)
    register_algorithm("selfdev_twice", CODE)  # the same code again is harmless
    with pytest.raises(AlgorithmFileError, match="already registered with different code"):
        register_algorithm("selfdev_twice", CODE.replace("0.5", "0.25"))
