"""The layers the README describes, checked by import-linter (contracts in pyproject.toml)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = (
    "import sys\n"
    "from importlinter.cli import lint_imports\n"
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))\n"
)


def lint(config: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter")  # the `test` extra installs it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-c", LINT, str(config)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_are_kept():
    done = lint(ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_layer_fails(tmp_path: Path):
    # The same machinery on a contract the code breaks (selfdev imports seeds, not the other way round).
    config = tmp_path / ".importlinter"
    config.write_text(
        "[importlinter]\nroot_packages =\n    selfdev\n    seeds\n\n"
        "[importlinter:contract:upside-down]\nname = upside down\ntype = layers\nlayers =\n    seeds\n    selfdev\n"
    )
    done = lint(config)
    assert done.returncode == 1 and "upside down BROKEN" in done.stdout
