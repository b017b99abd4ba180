"""`selfdev sandbox check FILE`: the sandbox sub-app on its own (selfdev's CLI mounts it as is)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sandbox.cli import app

CORPUS = Path(__file__).parent / "corpus"
runner = CliRunner()


def test_benign_file_prints_ok_fingerprint_and_probe_time():
    result = runner.invoke(app, ["check", str(CORPUS / "benign" / "ties.py")])
    assert result.exit_code == 0, result.output
    assert "status:      ok" in result.output
    fingerprint = [line for line in result.output.splitlines() if line.startswith("fingerprint:")][0]
    assert len(fingerprint.split()[-1]) == 16
    assert "probe time:" in result.output


def test_hostile_files_print_their_status_and_exit_1():
    result = runner.invoke(app, ["check", str(CORPUS / "hostile" / "import_os.py")])
    assert result.exit_code == 1
    assert "status:      policy" in result.output
    assert "import of 'os' is not allowed" in result.output
    assert "line:        4" in result.output

    result = runner.invoke(app, ["check", "--json", str(CORPUS / "hostile" / "nan_output.py")])
    assert result.exit_code == 1
    diagnosis = json.loads(result.output)
    assert diagnosis["status"] == "bad_output" and diagnosis["fingerprint"] is None


def test_missing_file_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nope.py"
    result = runner.invoke(app, ["check", str(missing)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {missing}: no such file"
    assert "Traceback" not in result.output


def test_control_characters_from_the_candidate_are_escaped():
    result = runner.invoke(app, ["check", str(CORPUS / "hostile" / "control_characters.py")])
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\r", "\x08", "\u202e"):
        assert raw not in result.output
    assert "\\x1b[2J\\x1b[Hstatus:      ok\\x0dfingerprint: 0000\\x08\\x08\\u202egnp." in result.output
    # Exactly one status line: the printed imitation is indented under "output:" and escaped.
    assert [line for line in result.output.splitlines() if line.startswith("status:")] == ["status:      ok"]


def test_printable_keeps_text_and_tabs():
    from sandbox.cli import printable

    assert printable("mean\tof 3 tensors: ü ∑") == "mean\tof 3 tensors: ü ∑"
    assert printable("a\x00b\x7fc\x9bd\u2028e") == "a\\x00b\\x7fc\\x9bd\\u2028e"
