"""Errors the evals layer raises on bad input; the CLI prints their message as one line."""

from __future__ import annotations


class EvalsError(Exception):
    """Base of every error raised on purpose by `evals`."""


class DataError(EvalsError):
    """A benchmark could not be loaded: missing directory or file, malformed row, hub failure."""


class UnknownTaskError(EvalsError, LookupError):
    """A task name that is not in the registry."""


class UnknownSplitError(EvalsError, ValueError):
    """A split name that the task does not have (for example MATH "train")."""


class BackendUnavailable(EvalsError, RuntimeError):
    """The requested backend cannot run on this machine (vLLM not installed, no CUDA GPU)."""
