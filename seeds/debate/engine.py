"""The debate: N agents answer every problem, then R-1 rounds in which each sees the others' answers.

A round is one batch: all agents' prompts for all problems go to the model pool
together (after one batch of summaries when the summarizer is on). Agents that
are copies of one model therefore cost a single backend call per round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evals.progress import progress_bar
from evals.tasks import get_task
from evals.tasks.base import Example, Task
from seeds.debate.config import DebateSettings
from seeds.debate.models import ModelPool
from seeds.debate.prompts import summarizer_prompt
from seeds.debate.transcript import DebateRecord, agent_messages, peer_responses
from seeds.debate.voting import majority_vote


@dataclass(frozen=True)
class AgentModels:
    """Who answers: generator i in round 0, critic i in later rounds, the summarizer writes summaries."""

    generators: tuple[str, ...]
    critics: tuple[str, ...]
    summarizer: str

    @classmethod
    def copies(cls, model: str, agents: int) -> "AgentModels":
        return cls((model,) * agents, (model,) * agents, model)

    def for_round(self, round_: int) -> tuple[str, ...]:
        return self.generators if round_ == 0 else self.critics


def start_records(problems: Sequence[tuple[Task, Example]]) -> list[DebateRecord]:
    return [DebateRecord(id=ex.id, task=task.name, question=ex.question, gold=ex.gold) for task, ex in problems]


def run_debate(
    pool: ModelPool,
    models: AgentModels,
    records: list[DebateRecord],
    settings: DebateSettings,
    *,
    seed: int,
    label: str = "debate",
    show_progress: bool = True,
    on_round: Callable[[list[DebateRecord]], None] | None = None,
) -> list[DebateRecord]:
    """Play the rounds `records` have not played yet (all of them for fresh records), in place.

    `on_round` is called after every finished round, so a caller can save them
    and a killed debate resumes from its last finished round.
    """
    agents = len(models.generators)
    if len(models.critics) != agents:
        raise ValueError(f"{agents} generators but {len(models.critics)} critics")
    if not records:
        return records
    done = {r.rounds_done for r in records}
    if len(done) != 1:
        raise ValueError(f"records disagree on how many rounds were played: {sorted(done)}")
    for round_ in range(done.pop(), settings.rounds):
        round_seed = seed + 7919 * round_  # distinct, reproducible samples per round
        if round_ > 0 and settings.summarize:
            _summarize(pool, models, records, settings, round_, round_seed, label, show_progress)
        slots = [(rec, a) for rec in records for a in range(agents)]
        requests = [(models.for_round(round_)[a], agent_messages(rec, a, round_)) for rec, a in slots]
        with progress_bar(f"{label} round {round_}", len(requests), show_progress) as advance:
            outs = pool.generate(requests, settings.sampling(round_seed), progress=advance)
        for rec in records:
            rec.responses.append([""] * agents)
            rec.answers.append([None] * agents)
        for (rec, a), completion in zip(slots, outs):
            rec.responses[round_][a] = completion.text
            rec.answers[round_][a] = get_task(rec.task).extract(completion.text, truncated=completion.truncated)
        for rec in records:
            rec.votes.append(majority_vote(get_task(rec.task), rec.answers[round_], settings.vote))
        if on_round is not None:
            on_round(records)
    return records


def _summarize(
    pool: ModelPool,
    models: AgentModels,
    records: list[DebateRecord],
    settings: DebateSettings,
    round_: int,
    seed: int,
    label: str,
    show_progress: bool,
) -> None:
    """One summary per agent and problem, of the other agents' answers from the previous round."""
    agents = len(models.generators)
    slots = [(rec, a) for rec in records for a in range(agents)]
    requests = [(models.summarizer, summarizer_prompt(peer_responses(rec, a, round_))) for rec, a in slots]
    with progress_bar(f"{label} summaries {round_}", len(requests), show_progress) as advance:
        outs = pool.generate(requests, settings.sampling(seed + 1, summary=True), progress=advance)
    for rec in records:
        rec.summaries.append([""] * agents)
    for (rec, a), completion in zip(slots, outs):
        rec.summaries[round_ - 1][a] = completion.text
