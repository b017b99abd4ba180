"""The bandit over evolve's directions of change: reading a prompt's direction back, the record of what paid, the
draw (reproducible, drawn to what pays, never shut off)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from selfdev.generator.directions import DIRECTIONS, Record, choose, direction_of, in_turn, pays, records
from selfdev.generator.proposals import REPAIR_NOTE, evolve_messages, evolve_prompts
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord


def candidate(index: int, direction: int, status: str, proposal: str = "evolve", arm: str = "main") -> CandidateRecord:
    chat = evolve_messages(3, [], DIRECTIONS[direction])
    if proposal == "repair":
        chat[-1]["content"] += REPAIR_NOTE.format(diagnosis="runtime: boom")
    return CandidateRecord(0, index, status, prompt=json.dumps(chat), proposal=proposal, arm=arm, fingerprint=f"f{index}")


def test_direction_is_read_back_from_the_recorded_prompt():
    for i, direction in enumerate(DIRECTIONS):
        assert direction_of(json.dumps(evolve_messages(3, [], direction))) == i
    assert direction_of(None) is None
    assert direction_of(json.dumps([{"role": "user", "content": "Invent a new merging algorithm."}])) is None


def test_records_count_fresh_evolve_samples_and_what_paid():
    cands = [candidate(0, 1, "ok"), candidate(1, 1, "runtime"), candidate(2, 3, "ok"),
             candidate(3, 1, "ok", proposal="repair"),  # a repair asked for a fix, not for the direction
             candidate(4, 1, "ok", arm="control")]  # the generator without DPO does not steer the DPO arm
    history = records(cands, paid=lambda c: pays(c, known=lambda c: c.fingerprint == "f2"))
    assert history[1] == Record(asked=2, paid=1) and history[3] == Record(asked=1, paid=0)
    assert sum(r.asked for r in history) == 3


def test_in_turn_continues_where_it_left_off():
    assert in_turn(0, 3) == [0, 1, 2] and in_turn(5, 3) == [5, 0, 1]


def test_choose_is_reproducible_and_drawn_to_what_pays():
    none = [Record()] * len(DIRECTIONS)
    assert choose(none, 12, seed=4) == choose(none, 12, seed=4) != choose(none, 12, seed=5)
    assert set(choose(none, 600, seed=0)) == set(range(len(DIRECTIONS)))  # no history: any direction
    history = [Record(asked=30, paid=25), Record(asked=30, paid=2)] + [Record(asked=30, paid=12)] * (len(DIRECTIONS) - 2)
    counts = Counter(choose(history, 600, seed=0))
    assert counts[0] > 500 and counts[1] == 0
    # Little evidence leaves every direction a chance: one failure does not shut a direction off.
    counts = Counter(choose([Record(asked=1, paid=0)] + [Record(asked=1, paid=1)] * (len(DIRECTIONS) - 1), 600, seed=0))
    assert counts[0] > 0


def test_evolve_prompts_ask_the_chosen_directions():
    dev = Evaluation.of(["p0", "p1"], [True, False])
    pool = [CandidateRecord(0, i, "ok", code=f"def merge(task_vectors):\n    return task_vectors[{i}] * 0.5\n", dev=dev)
            for i in range(3)]
    chosen = [4, 4, 2]
    prompts = evolve_prompts(3, pool, shown=2, n=3, seed=0, directions=chosen)
    assert [direction_of(json.dumps(p)) for p in prompts] == chosen
    # The same parents as the prompts that take the directions in turn: only the direction differs.
    in_turn = evolve_prompts(3, pool, shown=2, n=3, seed=0)
    assert [p[-1]["content"].split("Write a new")[0] for p in prompts] == [p[-1]["content"].split("Write a new")[0] for p in in_turn]
    with pytest.raises(ValueError, match="3 directions"):
        evolve_prompts(3, pool, shown=2, n=3, seed=0, directions=[0])
