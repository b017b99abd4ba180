"""Training problems inside a task's held-out splits: what an expert trained on, discovery must not score on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from evals.tasks.base import DataDir, Task

HELD_OUT_SPLITS = ("dev", "test")


def held_out_overlap(
    training_ids: Iterable[str], task: Task, data_dir: DataDir = None, splits: Sequence[str] = HELD_OUT_SPLITS
) -> dict[str, list[str]]:
    """The ids among `training_ids` that are problems of `task`'s `splits`, per split; splits without any are left
    out, so an empty dict means no overlap.

    Example ids start with their task's name ("gsm8k/test/17"), so another task's
    problems cannot overlap and, when nothing else is given, the splits are not even loaded.
    """
    training = {i for i in training_ids if i.split("/", 1)[0] == task.name}
    if not training:
        return {}
    found = {split: [ex.id for ex in task.examples(split, data_dir) if ex.id in training] for split in splits}
    return {split: ids for split, ids in found.items() if ids}
