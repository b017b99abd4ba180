"""`UserError`: the base of every error `selfdev` raises for a user's mistake (one-line message, exit 1).

Each package has one such base and the CLI catches the bases (`selfdev.cli.USER_ERRORS`):
`selfdev.errors.UserError`, `seeds.errors.SeedError`, `evals.errors.EvalsError`. The
sandbox reports a refused or failing candidate as a `Diagnosis`, not an exception.
"""

from __future__ import annotations


class UserError(RuntimeError):
    """Bad input from the command line or a config file."""
