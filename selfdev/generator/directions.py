"""The directions of change an `evolve` prompt asks for, and which one each sample gets: a bandit over them.

A direction pays when the reply it asked for ran in the sandbox, is not a trivial merge and computes a function
not seen before (a new fingerprint): what discovery can score. How often a direction pays is a property of the
generator: the 0.5B seed answered "drop what interferes" with code that ran 11 times in 36, and every other
direction 23-30 times in 36 (bench_generator, 2026-12-02, T 0.6-1.0; a rewording with a threshold idiom ran 11 of
24 against 11 of 24, 2026-12-03). So each sample's direction is drawn by Thompson sampling from the run's own
record of what paid (ShinkaEvolve's bandit over proposal kinds) rather than taken in turn: a generator that
fails at a direction is asked for it less, one that succeeds keeps being asked, and every direction keeps a chance.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from selfdev.stages import CandidateRecord

# The operations model-merging methods differ by (weighting, trimming, sign election, rescaling) and recombination.
DIRECTIONS = (
    "Change how the task vectors are weighted: for example by their norms, by how much they agree, or per element.",
    "Drop what interferes: keep only the largest-magnitude entries of each task vector (or those that agree in "
    "sign across experts) and zero the rest.",
    "Resolve sign conflicts: decide a sign per element from the experts, then combine only the values that agree "
    "with it.",
    "Combine the ideas of two of the algorithms above into one.",
    "Rescale the merged vector: for example so that its norm matches the task vectors' norms, or per element.",
    "Improve the best algorithm above: change one step of it that limits its accuracy.",
)

# What the report calls each, in the same order.
NAMES = ("weighting", "trimming", "sign election", "recombination", "rescaling", "improving the best")


@dataclass(frozen=True)
class Record:
    """How often a direction was asked for, and how often it paid."""

    asked: int = 0
    paid: int = 0


def direction_of(prompt: str | None) -> int | None:
    """The index of the direction a recorded prompt (chat messages as JSON) asked for; None: it asked for none."""
    if not prompt:
        return None
    asked = json.loads(prompt)[-1]["content"]
    return next((i for i, text in enumerate(DIRECTIONS) if text in asked), None)


def asked(candidate: CandidateRecord) -> int | None:
    """The direction a fresh `evolve` sample of the main arm asked for (the samples the bandit learns from); None for
    any other candidate: repairs asked for a fix, not for the direction, and the control arm is the generator
    without DPO, whose record must not steer the DPO arm's directions."""
    return direction_of(candidate.prompt) if candidate.proposal == "evolve" and candidate.arm == "main" else None


def pays(candidate: CandidateRecord, known: Callable[[CandidateRecord], bool]) -> bool:
    """What a direction is rewarded for: the reply ran and its function is not `known` (trivial, or seen earlier
    in the run: a repeat inherits a score and gives discovery nothing to measure)."""
    return candidate.executable and not known(candidate)


def records(candidates: Iterable[CandidateRecord], paid: Callable[[CandidateRecord], bool]) -> list[Record]:
    """Per direction, the samples that `asked` for it and how many of them `paid`."""
    tries, won = [0] * len(DIRECTIONS), [0] * len(DIRECTIONS)
    for c in candidates:
        index = asked(c)
        if index is not None:
            tries[index] += 1
            won[index] += bool(paid(c))
    return [Record(a, w) for a, w in zip(tries, won)]


def in_turn(start: int, n: int) -> list[int]:
    """`n` directions taken in turn from the `start`-th: the bandit's control."""
    return [(start + i) % len(DIRECTIONS) for i in range(n)]


def choose(history: list[Record], n: int, seed: int) -> list[int]:
    """`n` directions, each the best of one draw from every direction's Beta(1 + paid, 1 + unpaid) posterior;
    with no history, every direction is as likely. The same history and seed give the same directions (a resumed
    run asks the same). A stream of its own: the parents a prompt shows are drawn with `seed` too
    (proposals.evolve_prompts), and the same stream would tie a prompt's direction to its parents."""
    rng = random.Random(f"directions {seed}")
    return [
        max(range(len(history)), key=lambda i: rng.betavariate(1 + history[i].paid, 1 + history[i].asked - history[i].paid))
        for _ in range(n)
    ]
