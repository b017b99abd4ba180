"""Benchmarks (GSM8K, MATH, arithmetic), few-shot prompts, scoring and generation backends.

Light imports only: `evals.evaluate` (rich, the backend interface) and the
backends themselves are imported where they are used.
"""

from evals.errors import BackendUnavailable, DataError, EvalsError, UnknownSplitError, UnknownTaskError
from evals.splits import SplitInfo
from evals.tasks import TASKS, Example, Task, get_task

__all__ = [
    "TASKS",
    "BackendUnavailable",
    "DataError",
    "EvalsError",
    "Example",
    "SplitInfo",
    "Task",
    "UnknownSplitError",
    "UnknownTaskError",
    "get_task",
]
