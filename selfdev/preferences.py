"""DPO preference pairs from an iteration's scored candidates (Self-Developing, Sec. 3.3).

Chosen: the top `top_fraction` of the current iteration by dev score, plus the best
`carry_over` of every earlier iteration. Rejected: the bottom `bottom_fraction`, where
a candidate that never ran (no code, sandbox failure) ranks below every scored one.
Every chosen reply is paired with every rejected one.

Beyond the paper: when nothing was scored so far (the small seed's first iteration can
produce no executable code at all), the scored references with code (task arithmetic,
the prompt's one-shot example) stand in as chosen, so the generator still learns to
write code that runs instead of skipping DPO (`references_as_fallback`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from selfdev.archive import Archive, Candidate
from selfdev.generator.prompt import code_reply


class PreferenceConfig(BaseModel):
    top_fraction: float = Field(default=0.03, gt=0, le=1, description="share of the iteration taken as chosen")
    bottom_fraction: float = Field(default=0.10, gt=0, le=1, description="share of the iteration taken as rejected")
    carry_over: int = Field(default=3, ge=0, description="best candidates of each earlier iteration added as chosen")
    references_as_fallback: bool = Field(
        default=True, description="scored references with code are chosen when no generated candidate was scored"
    )


@dataclass(frozen=True)
class PreferencePair:
    prompt: str
    chosen: str
    rejected: str
    chosen_id: int
    rejected_id: int


def rank_key(c: Candidate) -> tuple:
    # Unscored candidates rank last; among scored, higher dev score and more dev problems first.
    return (c.dev_score is None, -(c.dev_score or 0.0), -(c.dev_n or 0), c.id or 0)


def select_pairs(archive: Archive, iteration: int, config: PreferenceConfig) -> list[PreferencePair]:
    pool = [c for c in archive.candidates(iteration) if c.reply]
    if len(pool) < 2:
        return []
    ranked = sorted(pool, key=rank_key)
    n_top = max(1, math.floor(config.top_fraction * len(ranked)))
    n_bottom = max(1, math.floor(config.bottom_fraction * len(ranked)))
    chosen = [c for c in ranked[:n_top] if c.dev_score is not None]
    rejected = ranked[-n_bottom:]
    for earlier in range(iteration):
        chosen += [c for c in archive.top(config.carry_over, earlier) if c.reply]
    if not chosen and config.references_as_fallback:
        chosen = [
            replace(r, reply=code_reply(r.code))
            for r in archive.references() if r.code and r.dev_score is not None
        ]
    rejected_ids = {c.id for c in rejected}
    chosen = [c for c in {c.id: c for c in chosen}.values() if c.id not in rejected_ids]
    pairs = []
    for good in chosen:
        for bad in rejected:
            # Equal scores carry no preference (e.g. every candidate scored 0).
            if bad.dev_score is not None and bad.dev_score >= (good.dev_score or 0.0):
                continue
            pairs.append(PreferencePair(good.prompt or bad.prompt or "", good.reply, bad.reply, good.id, bad.id))
    return pairs
