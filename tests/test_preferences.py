"""Preference-pair rules: top fraction chosen, bottom fraction rejected, failures rank last, earlier best carried over."""

from __future__ import annotations

from selfdev.archive import Archive, Candidate
from selfdev.preferences import PreferenceConfig, select_pairs


def add(archive: Archive, iteration: int, index: int, score: float | None, status: str = "ok") -> int:
    c = Candidate(iteration=iteration, sample_index=index, status=status, reply=f"reply {iteration}/{index}",
                  prompt="[]", dev_score=score, dev_n=None if score is None else 10)
    return archive.add(c)


def test_top_and_bottom_fractions(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        ids = [add(archive, 0, i, i / 100) for i in range(40)]  # scores 0.00 .. 0.39
        failed = add(archive, 0, 40, None, status="runtime")
        pairs = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.05, bottom_fraction=0.1, carry_over=3))
    chosen = {p.chosen_id for p in pairs}
    rejected = {p.rejected_id for p in pairs}
    assert chosen == {ids[39], ids[38]}  # floor(0.05 * 41) = 2 best
    assert rejected == {failed, ids[0], ids[1], ids[2]}  # floor(0.1 * 41) = 4 worst, the failure first
    assert len(pairs) == 2 * 4


def test_equal_scores_make_no_pair_but_failures_still_do(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        zero = [add(archive, 0, i, 0.0) for i in range(9)]
        failed = add(archive, 0, 9, None, status="syntax")
        pairs = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.1, bottom_fraction=0.2))
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == {(zero[0], failed)}


def test_best_of_earlier_iterations_carried_over(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        old = [add(archive, 0, i, s) for i, s in enumerate([0.9, 0.8, 0.1, 0.05])]
        new = [add(archive, 1, i, s) for i, s in enumerate([0.5, 0.4, 0.3, 0.2, 0.0])]
        pairs = select_pairs(archive, 1, PreferenceConfig(top_fraction=0.2, bottom_fraction=0.2, carry_over=2))
    assert {p.chosen_id for p in pairs} == {new[0], old[0], old[1]}
    assert {p.rejected_id for p in pairs} == {new[4]}


def test_too_few_candidates(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        add(archive, 0, 0, 0.5)
        assert select_pairs(archive, 0, PreferenceConfig()) == []


def add_reference(archive: Archive, name: str, score: float | None, code: str | None) -> int:
    return archive.add(Candidate(iteration=-1, sample_index=0 if code is None else 1, status="ok", kind="reference",
                                 name=name, code=code, dev_score=score, dev_n=10))


def test_scored_reference_code_is_chosen_when_nothing_generated_ran(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        add_reference(archive, "seed", 0.2, None)  # the seed has no code: nothing to prefer
        ta = add_reference(archive, "task_arithmetic", 0.1, "def merge(task_vectors):\n    return task_vectors[0]\n")
        failed = [add(archive, 0, i, None, status="syntax") for i in range(10)]
        pairs = select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2))
        assert {p.chosen_id for p in pairs} == {ta}
        assert {p.rejected_id for p in pairs} == set(failed[-2:])
        assert pairs[0].chosen.startswith("```python\ndef merge(") and pairs[0].prompt == "[]"
        assert select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2, references_as_fallback=False)) == []
        scored = add(archive, 0, 10, 0.0)  # one generated candidate scored: the paper's rule applies again
        assert {p.chosen_id for p in select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2))} == {scored}
