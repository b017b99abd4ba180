"""DPO preference pairs from an iteration's candidates (Self-Developing, Sec. 3.3), ranked by `selfdev.scores`.

Chosen: the top `top_fraction` of the current iteration, plus the best
`carry_over` of every earlier iteration, in the one ranking (`scores.rank_key`:
deepest in the cascade first, then accuracy on those problems). Rejected: the
bottom `bottom_fraction`, taken from candidates that ran and were scored, with
at most a `rejected_failure_share` of failures (code that never ran). With
failures ranked last, as in the paper, every rejected reply is a failure as
soon as more than the bottom share fails, and DPO learns "write code that runs",
never "write a better merge".

Only the main arm's samples of the iteration are paired (not the control
arm's, not repairs, whose prompts each show one broken function); each pair
trains on the prompt its rejected reply was sampled from, as recorded in the
archive.

A pair is kept only when the chosen candidate reached at least the depth of the
rejected one and scored higher on the problems both saw (`scores.preferred`).

Beyond the paper: when nothing was scored so far (the small seed's first iteration can
produce no executable code at all), the scored references with code (task arithmetic,
the prompt's one-shot example) stand in as chosen, so the generator still learns to
write code that runs instead of skipping DPO (`references_as_fallback`). But a reply
that copies a reference is never chosen (`chosen_copies`): in a control-arm run the
embedded generator, trained on copies of the example against failures, wrote the example
11 times in 12 against 4 in 12 without DPO, and nothing new. Copies can be rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from selfdev import scores
from selfdev.archive import Archive
from selfdev.config import PreferenceConfig
from selfdev.generator.reply import code_reply
from selfdev.stages import ASKED_AGAIN, CandidateRecord


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    chosen_id: int
    rejected_id: int


@dataclass(frozen=True)
class Preferences:
    pairs: list[PreferencePair]
    rejected: int  # distinct rejected replies in the pairs
    rejected_failures: int  # of those, replies whose code never ran

    def metrics(self) -> dict[str, int]:
        return {"rejected": self.rejected, "rejected_failures": self.rejected_failures}


def _rejected(scored: list[CandidateRecord], failed: list[CandidateRecord], chosen: list[CandidateRecord], n: int, share: float) -> list[CandidateRecord]:
    chosen_ids = {c.id for c in chosen}
    ran = [c for c in scored if c.id not in chosen_ids]
    n_failed = min(len(failed), math.floor(share * n + 1e-9))
    worst_ran = ran[len(ran) - min(len(ran), n - n_failed):]
    n_failed = min(len(failed), n - len(worst_ran))  # too few ran: failures fill in
    return worst_ran + failed[:n_failed]


def _pairable(candidates: list[CandidateRecord]) -> list[CandidateRecord]:
    """The main arm's samples: not the control arm's (no DPO by design), not repairs or revisions (each answers its
    own prompt)."""
    return [c for c in candidates if c.reply and c.arm == "main" and c.proposal not in ASKED_AGAIN]


def select_pairs(archive: Archive, iteration: int, config: PreferenceConfig) -> Preferences:
    pool = _pairable(archive.candidates(iteration))
    if len(pool) < 2:
        return Preferences([], 0, 0)
    scored = scores.ranked(c for c in pool if c.dev is not None)
    failed = [c for c in pool if c.dev is None]
    n_top = max(1, math.floor(config.top_fraction * len(pool)))
    n_bottom = max(1, math.floor(config.bottom_fraction * len(pool)))
    copies = set() if config.chosen_copies else {r.id for r in archive.references()}
    chosen = [c for c in scored if c.duplicate_of not in copies][:n_top]
    for earlier in range(iteration):
        measured = (c for c in _pairable(archive.candidates(earlier)) if c.dev is not None and c.duplicate_of is None)
        chosen += scores.ranked(measured)[: config.carry_over]
    if not chosen and not scored and config.references_as_fallback:
        chosen = [replace(r, reply=code_reply(r.code)) for r in archive.references() if r.code and r.dev is not None]
    rejected = _rejected(scored, failed, chosen, n_bottom, config.rejected_failure_share)
    chosen = list({c.id: c for c in chosen}.values())
    pairs = [
        # The prompt the rejected reply was sampled from: this iteration's (a carried-over chosen one may come
        # from an earlier evolve prompt).
        PreferencePair(bad.prompt or good.prompt or "", good.reply, bad.reply, good.id, bad.id)
        for good in chosen
        for bad in rejected
        if scores.preferred(good, bad)  # equal scores carry no preference (e.g. every candidate scored 0)
    ]
    used = {p.rejected_id for p in pairs}
    return Preferences(pairs, len(used), sum(c.dev is None for c in rejected if c.id in used))


def most_pairs(samples: int, iteration: int, config: PreferenceConfig) -> int:
    """The pairs `select_pairs` makes at most from an iteration of `samples` main-arm samples: every chosen reply
    (the iteration's top and the earlier iterations' carried-over best) against every rejected one. What a budget
    plans a DPO's steps from (selfdev.budget)."""
    chosen = max(1, math.floor(config.top_fraction * samples)) + config.carry_over * iteration
    return chosen * max(1, math.floor(config.bottom_fraction * samples))
