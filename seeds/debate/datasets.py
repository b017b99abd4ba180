"""Finetuning data from debates, per agent and role, labelled by the final-round majority vote.

- Generator i: its own round-0 answers that match the vote.
- Critic i: its own debates whose final answer matches the vote; every
  wrong-to-right correction (round-0 answer differs from the vote), plus each
  right-to-right one with probability 0.5, drawn from a generator seeded by
  (seed, problem, agent) so the draw does not depend on order or process.

Each agent's examples come from that agent's turns only: agents never share
data, which is what keeps them diverse. (The reference release wrote one
agent's data to every agent's file and dropped critic data under a misspelled
key; tests pin both down.)
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evals.tasks import get_task
from evals.atomic import read_jsonl, write_json_atomic, write_jsonl_atomic
from seeds.debate.config import CRITIC, GENERATOR, DatasetSettings
from seeds.debate.transcript import DebateRecord, agent_messages
from seeds.debate.voting import same_answer


def generator_examples(records: Iterable[DebateRecord], agent: int) -> list[dict]:
    examples = []
    for rec in records:
        task = get_task(rec.task)
        if same_answer(task, rec.answers[0][agent], rec.label):
            examples.append(_example(rec, agent, 0, "generation"))
    return examples


def critic_examples(records: Iterable[DebateRecord], agent: int, settings: DatasetSettings, seed: int) -> list[dict]:
    examples = []
    for rec in records:
        task = get_task(rec.task)
        final = rec.rounds_done - 1
        if final < 1 or not same_answer(task, rec.answers[final][agent], rec.label):
            continue
        if not same_answer(task, rec.answers[0][agent], rec.label):
            examples.append(_example(rec, agent, final, "wrong_to_right"))
        elif random.Random(f"{seed}/{rec.id}/{agent}").random() < settings.right_to_right_probability:
            examples.append(_example(rec, agent, final, "right_to_right"))
    return examples


def _example(rec: DebateRecord, agent: int, round_: int, kind: str) -> dict:
    """A conversational prompt-completion row: trl trains on the completion only."""
    return {
        "prompt": agent_messages(rec, agent, round_),
        "completion": [{"role": "assistant", "content": rec.responses[round_][agent]}],
        "id": rec.id,
        "agent": agent,
        "kind": kind,
    }


@dataclass
class AgentDatasets:
    """examples[role][agent] -> that agent's rows."""

    examples: dict[str, list[list[dict]]]

    def counts(self) -> dict[str, list[dict[str, int]]]:
        table: dict[str, list[dict[str, int]]] = {}
        for role, per_agent in self.examples.items():
            table[role] = []
            for rows in per_agent:
                kinds: dict[str, int] = {"total": len(rows)}
                for row in rows:
                    kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
                table[role].append(kinds)
        return table


def build_datasets(records: Sequence[DebateRecord], agents: int, settings: DatasetSettings, seed: int) -> AgentDatasets:
    labelled = [rec for rec in records if rec.label is not None]  # no voted answer: nothing to learn from
    return AgentDatasets(
        {
            GENERATOR: [generator_examples(labelled, a) for a in range(agents)],
            CRITIC: [critic_examples(labelled, a, settings, seed) for a in range(agents)],
        }
    )


def dataset_path(folder: Path, role: str, agent: int) -> Path:
    return folder / f"{role}-{agent}.jsonl"


def write_datasets(datasets: AgentDatasets, folder: Path, *, problems: int, labelled: int) -> dict:
    """One JSONL per agent and role, then counts.json last: its presence marks the stage done."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, per_agent in datasets.examples.items():
        for agent, rows in enumerate(per_agent):
            write_jsonl_atomic(dataset_path(folder, role, agent), rows)
    counts = {"problems": problems, "labelled": labelled, **datasets.counts()}
    write_json_atomic(folder / "counts.json", counts)
    return counts


def read_dataset(folder: Path, role: str, agent: int) -> list[dict]:
    return read_jsonl(dataset_path(folder, role, agent))
