"""What a task is: its examples, its few-shot demonstrations, and how its answers are scored."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

from evals.errors import UnknownSplitError
from evals.splits import SplitInfo, ids_sha256

DataDir = str | os.PathLike[str] | Path | None


@dataclass(frozen=True)
class Example:
    id: str  # stable across processes and data sources, e.g. "gsm8k/test/17"
    question: str
    gold: str  # the gold final answer only, never the worked solution
    meta: dict = field(default_factory=dict)  # split, subject, level, ...


# Where a model starts the next problem of a few-shot transcript itself. The tasks' stop sequences catch
# these after a line break; written on the same line ("The answer is 12. Question: ...") they get through.
CONTINUATION_MARKERS = ("Question:", "User:")


def answer_text(completion: str) -> tuple[str, bool]:
    """`completion` up to where it starts a new problem of its own, and whether it was cut.

    A marker at the very start is the model restating the question, not a continuation, and stays.
    """
    start = len(completion) - len(completion.lstrip())
    cuts = [i for i in (completion.find(m, start + 1) for m in CONTINUATION_MARKERS) if i >= 0]
    return (completion[: min(cuts)], True) if cuts else (completion, False)


class Task(ABC):
    """One benchmark. Subclasses fill the class attributes and the four abstract methods."""

    name: ClassVar[str]
    stop: ClassVar[tuple[str, ...]]  # stop sequences for generation
    max_new_tokens: ClassVar[int]
    split_seed: ClassVar[int]
    split_strategy: ClassVar[str]
    # Full size of each split; what `limit=None` returns.
    split_sizes: ClassVar[Mapping[str, int]] = MappingProxyType({})

    @abstractmethod
    def examples(self, split: str, data_dir: DataDir = None, limit: int | None = None) -> list[Example]:
        """Examples of `split` ("dev", "test", or "train" where the task has one), in seeded order.

        `data_dir` is a local copy of the data (see `evals.data`); None means
        $SELFDEV_DATA_DIR if set, else the Hugging Face hub. `limit` keeps a prefix.
        """

    @abstractmethod
    def fewshot(self) -> list[tuple[str, str]]:
        """Five (question, worked solution) demonstrations, fixed, ending in the answer format."""

    @abstractmethod
    def read_answer(self, text: str, *, truncated: bool) -> str | None:
        """The final answer in `text` (a completion already cut at `answer_text`), normalised; None when there is
        none. `truncated`: the completion hit the token limit, so only a final marker (a box, "the answer is")
        gives an answer."""

    @abstractmethod
    def is_correct(self, predicted: str | None, gold: str) -> bool:
        """Whether an extracted answer matches the gold answer (None never does)."""

    def extract(self, completion: str, *, truncated: bool = False) -> str | None:
        """The final answer of a model's completion: the one extractor evaluation and the debate share.

        `truncated`: the completion was cut off at the token limit (`Completion.truncated`). A completion
        that went on to write the next problem is cut there first, and it did finish its own answer.
        """
        text, continued = answer_text(completion)
        return self.read_answer(text, truncated=truncated and not continued)

    def score(self, completion: str, gold: str, *, truncated: bool = False) -> tuple[str | None, bool]:
        """Extract and judge in one step."""
        predicted = self.extract(completion, truncated=truncated)
        return predicted, self.is_correct(predicted, gold)

    def split_info(self, examples: Sequence[Example]) -> SplitInfo:
        """The record of which examples a result was computed on."""
        splits = {ex.meta.get("split", "custom") for ex in examples}
        split = splits.pop() if len(splits) == 1 else "mixed"
        return SplitInfo(
            task=self.name,
            split=split,
            seed=self.split_seed,
            strategy=self.split_strategy,
            sizes=dict(self.split_sizes),
            n=len(examples),
            ids_sha256=ids_sha256([ex.id for ex in examples]),
        )

    def _check_split(self, split: str, limit: int | None) -> None:
        if split not in self.split_sizes:
            raise UnknownSplitError(
                f"task {self.name!r} has no split {split!r}; choose from {', '.join(self.split_sizes)}"
            )
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
