"""One problem's debate: every agent's answer in every round, and the conversation each agent saw.

The record stores only what was generated (answers, summaries); the messages an
agent saw are rebuilt from it by `agent_messages`, the one function used both to
prompt the agents and to write the critics' finetuning data, so training
examples are exactly the conversations the agents had.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from seeds.debate.prompts import Message, peers_message, question_prompt, summary_message


@dataclass
class DebateRecord:
    id: str  # the task's example id, e.g. "gsm8k/train/17"
    task: str
    question: str
    gold: str  # for accuracy metrics only: labels come from the vote, never from here
    responses: list[list[str]] = field(default_factory=list)  # [round][agent] -> completion text
    answers: list[list[str | None]] = field(default_factory=list)  # [round][agent] -> extracted answer
    votes: list[str | None] = field(default_factory=list)  # [round] -> voted answer (None: no label)
    summaries: list[list[str]] = field(default_factory=list)  # [round - 1][agent] -> summary that agent was shown

    @property
    def rounds_done(self) -> int:
        return len(self.responses)

    @property
    def label(self) -> str | None:
        """The finetuning label: the final round's majority vote."""
        return self.votes[-1] if self.votes else None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DebateRecord":
        return cls(**data)


def peer_responses(record: DebateRecord, agent: int, round_: int) -> list[str]:
    """The other agents' answers from the round before `round_`, in agent order."""
    previous = record.responses[round_ - 1]
    return [text for other, text in enumerate(previous) if other != agent]


def debate_message(record: DebateRecord, agent: int, round_: int) -> str:
    """The user turn that opens round `round_` (>= 1) for `agent`."""
    if record.summaries:
        return summary_message(record.question, record.summaries[round_ - 1][agent])
    return peers_message(record.question, peer_responses(record, agent, round_))


def agent_messages(record: DebateRecord, agent: int, round_: int) -> list[Message]:
    """The conversation `agent` sees before answering round `round_`: its own earlier turns and the debate turns."""
    messages: list[Message] = [{"role": "user", "content": question_prompt(record.question)}]
    for r in range(1, round_ + 1):
        messages.append({"role": "assistant", "content": record.responses[r - 1][agent]})
        messages.append({"role": "user", "content": debate_message(record, agent, r)})
    return messages
