"""The on-disk form of a merge algorithm: a readable .py file, and the code the sandbox runs from it.

An exported file is a module docstring (scores, provenance), the torch
imports, and the algorithm verbatim: ordinary Python that people can read,
import and call. The sandbox runs the file as it is (its `import torch` binds
the sandbox's allow-listed stand-in), so the line numbers in its diagnostics
are the file's. Here the file is only read and statically checked, never executed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sandbox
from selfdev.errors import UserError

HEADER_IMPORTS = (("torch", "import torch"), ("Tensor", "from torch import Tensor"))
_IDENTIFIER = re.compile(r"[^0-9a-zA-Z_]+")


class AlgorithmFileError(UserError, ValueError):
    """An algorithm file that cannot be used: unreadable, or refused by the sandbox's static gate."""


def method_name(path: str | Path) -> str:
    """The mergekit method name of an algorithm file: its stem, made a Python identifier."""
    stem = _IDENTIFIER.sub("_", Path(path).stem).strip("_") or "algorithm"
    return stem if not stem[0].isdigit() else f"alg_{stem}"


def _header_imports(code: str) -> str:
    """The torch imports a reader needs to run `code` as plain Python, minus those it has already."""
    bound = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(alias.asname or alias.name for alias in node.names)
    return "".join(line + "\n" for name, line in HEADER_IMPORTS if name not in bound)


def render(code: str, docstring: str) -> str:
    """The text of an exported algorithm file."""
    # A raw docstring, so a Windows path among the experts is not an escape sequence.
    body = docstring.replace('"""', "'''").strip()
    imports = _header_imports(code)
    return f'r"""{body}\n"""\n\n' + (f"{imports}\n\n" if imports else "") + f"{code.strip()}\n"


def check_source(source: str, origin: str = "<algorithm>") -> str:
    """`source` unchanged if the sandbox's static gate accepts it; a one-line error naming the line otherwise.

    Nothing runs: the gate parses and inspects the code, so a bad file fails
    before any worker starts or any tensor is read.
    """
    diagnosis = sandbox.check_source(source)
    if not diagnosis.ok:
        where = f" line {diagnosis.line}:" if diagnosis.line else ""
        raise AlgorithmFileError(f"{origin}:{where} {diagnosis.status.value}: {diagnosis.reason}")
    return source


def read_algorithm(path: str | Path) -> tuple[str, str]:
    """(method name, the code the sandbox runs) of an algorithm file."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as e:
        raise AlgorithmFileError(f"cannot read algorithm file {path}: {e.strerror}") from None
    return method_name(path), check_source(source, str(path))
