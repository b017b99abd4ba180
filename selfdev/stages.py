"""A candidate's stages, each an immutable value, and the one place they become an archive row.

    Sample        what the generator replied, and from which prompt, arm and parent
      │ Screen (selfdev.screen): extract the code, the static gate once, probe for a fingerprint
    Screening     the code, the sandbox's verdict, the fingerprint (and the checked code for the merge)
      │ record_of: the archive row of a sample, as screened
    CandidateRecord
      │ a worker (selfdev.scoring): merge, load, evaluate
    Scored        the merge's verdict, the evaluation, their timings
      │ CandidateRecord.scored / .reusing (a duplicate takes the original's score)
    CandidateRecord ──Archive.add──▶ row

Every step makes a new value; nothing is changed in place, so a record handed
to a worker (or a Ray actor) is never changed under the driver. Torch-free: the
archive, the report and export import this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from selfdev.scores import Evaluation

if TYPE_CHECKING:
    from sandbox import CheckedCode, Diagnosis


class CandidateStatus(str, Enum):
    """Where a candidate ended: the sandbox's verdict (`sandbox.Status`, the same values) or one of the loop's own."""

    OK = "ok"
    SYNTAX = "syntax"
    POLICY = "policy"
    RUNTIME = "runtime"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    BAD_OUTPUT = "bad_output"
    NO_CODE = "no_code"  # the reply has no code block defining merge()
    LOST = "lost"  # its Ray actor died twice (selfdev.distributed)

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass(frozen=True)
class Sample:
    """One reply of the generator and where it came from."""

    reply: str
    prompt: str | None = None  # the chat as JSON (None: the paper prompt, in samples written before prompts were kept)
    proposal: str = "paper"
    arm: str = "main"
    parent_id: int | None = None
    tokens: int = 0


@dataclass(frozen=True)
class Screening:
    """What the driver found before any merge: the code, the sandbox's verdict and the fingerprint."""

    code: str | None
    status: CandidateStatus
    reason: str | None = None
    line: int | None = None
    fingerprint: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The code after the static gate, for the merge (not stored: a resumed run's finalists are checked again).
    checked: CheckedCode | None = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.status is CandidateStatus.OK


@dataclass(frozen=True)
class Scored:
    """What a worker measured: the merge's verdict and, when the model merged, its evaluation; timings of both."""

    status: CandidateStatus = CandidateStatus.OK
    reason: str | None = None
    line: int | None = None
    evaluation: Evaluation | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CandidateStatus(self.status))

    @classmethod
    def failed(cls, diagnosis: Diagnosis, timings: dict[str, float]) -> "Scored":
        return cls(CandidateStatus(diagnosis.status.value), diagnosis.reason, diagnosis.line, timings=timings)


# Proposal kinds that ask an earlier candidate's request again (its prompt plus a note): each answers a request
# of its own, so they are neither paired across arms nor DPO pairs with fresh samples.
ASKED_AGAIN = frozenset({"repair", "revise"})


@dataclass(frozen=True)
class CandidateRecord:
    """One archive row: a generated candidate, a reference (seed, task arithmetic) or a tuned baseline."""

    iteration: int
    sample_index: int
    status: CandidateStatus
    kind: str = "generated"
    name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    generator: str = ""
    prompt: str | None = None  # the chat messages as JSON; stored once in `prompts`, the row keeps its key
    proposal: str = "paper"  # paper, evolve, or one of ASKED_AGAIN
    arm: str = "main"
    parent_id: int | None = None
    reply: str | None = None
    code: str | None = None
    reason: str | None = None
    line: int | None = None
    fingerprint: str | None = None
    duplicate_of: int | None = None
    dev: Evaluation | None = None
    selection: Evaluation | None = None
    test: Evaluation | None = None
    timings: dict[str, float] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CandidateStatus(self.status))

    @property
    def executable(self) -> bool:
        return self.status is CandidateStatus.OK

    @property
    def dev_score(self) -> float | None:
        return None if self.dev is None else self.dev.accuracy

    @property
    def dev_n(self) -> int | None:
        return None if self.dev is None else self.dev.n

    @property
    def test_score(self) -> float | None:
        return None if self.test is None else self.test.accuracy

    @property
    def label(self) -> str:
        return f"candidate {self.iteration}/{self.sample_index}"

    def with_id(self, row_id: int) -> "CandidateRecord":
        return replace(self, id=row_id)

    def reusing(self, original: "CandidateRecord") -> "CandidateRecord":
        """A duplicate: the same function (fingerprint) as `original`, whose evaluation it takes over."""
        return replace(self, duplicate_of=original.id, dev=original.dev)

    def scored(self, split: str, scored: Scored) -> "CandidateRecord":
        """This record after a worker merged and evaluated it on `split` ('dev', 'selection' or 'test')."""
        changes: dict[str, Any] = {"timings": {**self.timings, **scored.timings}}
        if scored.status is not CandidateStatus.OK:
            changes.update(status=scored.status, reason=scored.reason, line=scored.line)
        if scored.evaluation is not None:
            changes[split] = scored.evaluation
        return replace(self, **changes)


def _screened(screening: Screening) -> dict[str, Any]:
    return dict(
        status=screening.status, code=screening.code, reason=screening.reason, line=screening.line,
        fingerprint=screening.fingerprint, timings=dict(screening.timings),
    )


def record_of(iteration: int, index: int, sample: Sample, screening: Screening, *, generator: str = "") -> CandidateRecord:
    """The one place a sample becomes an archive row: where it came from and what the screen found.

    `generator`: the checkpoint that sampled it ('' for the base generator).
    """
    return CandidateRecord(
        iteration=iteration, sample_index=index, generator=generator, prompt=sample.prompt,
        proposal=sample.proposal, arm=sample.arm, parent_id=sample.parent_id, reply=sample.reply, **_screened(screening),
    )


def reference(index: int, name: str, screening: Screening | None = None) -> CandidateRecord:
    """A reference row (iteration -1): the seed itself (no code, no screening) or a fixed algorithm, as screened."""
    if screening is None:
        return CandidateRecord(iteration=-1, sample_index=index, status=CandidateStatus.OK, kind="reference", name=name)
    return CandidateRecord(iteration=-1, sample_index=index, kind="reference", name=name, **_screened(screening))
