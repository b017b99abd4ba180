"""`selfdev sandbox ...`: check a merge-function file the way the discovery loop would."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import typer

from sandbox.diagnosis import Diagnosis
from sandbox.policy import check_source

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def _sandbox() -> None:
    """Check generated merge functions in the sandbox."""


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = "no such file"
    except IsADirectoryError:
        message = "is a directory"
    except UnicodeDecodeError:
        message = "not UTF-8 text"
    except OSError as exc:
        message = exc.strerror or type(exc).__name__
    typer.echo(f"error: {file}: {message}", err=True)
    raise typer.Exit(code=1)


@app.command()
def check(
    file: Path = typer.Argument(..., help="Python file defining merge(task_vectors) -> Tensor."),
    seed: int = typer.Option(0, help="Seed of the probe tensors and of the candidate's generator."),
    as_json: bool = typer.Option(False, "--json", help="Print the diagnosis as one JSON object."),
) -> None:
    """Static gate, then a probe run in the sandbox worker: status, reason, fingerprint, probe time.

    Exits 0 when the status is ok, 1 otherwise.
    """
    code = _read(file)
    diagnosis = check_source(code)
    if diagnosis.ok:
        # Imported here: a file the static gate refuses needs no worker process.
        from sandbox.limits import SandboxLimits
        from sandbox.worker import SandboxWorker

        with SandboxWorker(SandboxLimits(spare_worker=False)) as worker:
            diagnosis = worker.probe(code, seed=seed)
    _print(diagnosis, as_json)
    raise typer.Exit(code=0 if diagnosis.ok else 1)


def printable(text: str) -> str:
    """`text` with every control and format character (escape sequences, carriage returns,
    backspaces, bidirectional overrides, ...) shown as an escape instead of reaching the terminal.

    Tabs stay; newlines are the caller's to split on.
    """
    out = []
    for ch in text:
        if ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _print(diagnosis: Diagnosis, as_json: bool) -> None:
    if as_json:
        # json.dumps escapes every control character (ensure_ascii: all non-ASCII too).
        typer.echo(json.dumps(diagnosis.to_dict()))
        return
    typer.echo(f"status:      {diagnosis.status.value}")
    if diagnosis.reason:
        typer.echo(f"reason:      {printable(diagnosis.reason)}")
    if diagnosis.line is not None:
        typer.echo(f"line:        {diagnosis.line}")
    typer.echo(f"fingerprint: {diagnosis.fingerprint or '-'}")
    if diagnosis.zero_output:
        typer.echo("zero output: every probe output is identically zero")
    typer.echo(f"probe time:  {diagnosis.seconds * 1e3:.1f} ms")
    if diagnosis.output:
        typer.echo("output:")
        for line in diagnosis.output.rstrip("\n").split("\n"):
            typer.echo(f"  {printable(line)}")


if __name__ == "__main__":
    app()
