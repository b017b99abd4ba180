"""Preference-pair rules: top fraction chosen, bottom fraction rejected from what ran, earlier best carried over."""

from __future__ import annotations

from selfdev.archive import Archive
from selfdev.preferences import PreferenceConfig, select_pairs
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord


def dev(score: float | None, n: int = 100) -> Evaluation | None:
    if score is None:
        return None
    right = round(score * n)
    return Evaluation.of((f"p{i}" for i in range(n)), [True] * right + [False] * (n - right))


def add(archive: Archive, iteration: int, index: int, score: float | None, status: str = "ok", n: int = 100) -> int:
    c = CandidateRecord(iteration=iteration, sample_index=index, status=status, reply=f"reply {iteration}/{index}",
                  prompt="[]", dev=dev(score, n))
    return archive.add(c)


def test_top_and_bottom_fractions(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        ids = [add(archive, 0, i, i / 100) for i in range(40)]  # scores 0.00 .. 0.39
        failed = add(archive, 0, 40, None, status="runtime")
        config = PreferenceConfig(top_fraction=0.05, bottom_fraction=0.1, carry_over=3, rejected_failure_share=0.25)
        prefs = select_pairs(archive, 0, config)
    chosen = {p.chosen_id for p in prefs.pairs}
    rejected = {p.rejected_id for p in prefs.pairs}
    assert chosen == {ids[39], ids[38]}  # floor(0.05 * 41) = 2 best
    assert rejected == {failed, ids[0], ids[1], ids[2]}  # floor(0.1 * 41) = 4: one failure (25%), three that ran
    assert len(prefs.pairs) == 2 * 4 and (prefs.rejected, prefs.rejected_failures) == (4, 1)


def test_rejected_come_from_candidates_that_ran_even_when_most_fail(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        ran = [add(archive, 0, i, s) for i, s in enumerate([0.3, 0.2, 0.1])]
        failed = [add(archive, 0, 3 + i, None, status="runtime") for i in range(17)]
        prefs = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.05, bottom_fraction=0.1, rejected_failure_share=0))
        assert {p.chosen_id for p in prefs.pairs} == {ran[0]}
        assert {p.rejected_id for p in prefs.pairs} == {ran[1], ran[2]}  # floor(0.1 * 20) = 2, none a failure
        assert prefs.rejected_failures == 0
        # Under the paper's rule (failures rank last, share 1) every rejected reply would be a failure.
        paper = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.05, bottom_fraction=0.1, rejected_failure_share=1))
        assert {p.rejected_id for p in paper.pairs} <= set(failed) and paper.rejected_failures == 2


def test_chosen_must_reach_the_depth_of_the_rejected(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        cut_early = add(archive, 0, 0, 0.9, n=10)  # high on 10 problems, then cut (or not yet deeper)
        deep_good = add(archive, 0, 1, 0.5, n=30)
        deep_bad = add(archive, 0, 2, 0.1, n=30)
        prefs = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.34, bottom_fraction=0.34, rejected_failure_share=0))
    # The one ranking puts the deeper candidate first; the cut one never becomes "chosen" over a deeper rival.
    # It ranks last; rejected, it still loses on the problems both saw (10/10 vs 9/10).
    assert [(p.chosen_id, p.rejected_id) for p in prefs.pairs] == [(deep_good, cut_early)]
    assert deep_bad not in {p.rejected_id for p in prefs.pairs}


def test_equal_scores_make_no_pair_but_failures_still_do(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        zero = [add(archive, 0, i, 0.0) for i in range(9)]
        failed = add(archive, 0, 9, None, status="syntax")
        prefs = select_pairs(archive, 0, PreferenceConfig(top_fraction=0.1, bottom_fraction=0.2, rejected_failure_share=0.5))
    assert {(p.chosen_id, p.rejected_id) for p in prefs.pairs} == {(zero[0], failed)}


def test_best_of_earlier_iterations_carried_over(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        old = [add(archive, 0, i, s) for i, s in enumerate([0.9, 0.8, 0.1, 0.05])]
        new = [add(archive, 1, i, s) for i, s in enumerate([0.5, 0.4, 0.3, 0.2, 0.0])]
        prefs = select_pairs(archive, 1, PreferenceConfig(top_fraction=0.2, bottom_fraction=0.2, carry_over=2))
    assert {p.chosen_id for p in prefs.pairs} == {new[0], old[0], old[1]}
    assert {p.rejected_id for p in prefs.pairs} == {new[4]}


def test_too_few_candidates(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        add(archive, 0, 0, 0.5)
        assert select_pairs(archive, 0, PreferenceConfig()).pairs == []


def add_reference(archive: Archive, name: str, score: float | None, code: str | None) -> int:
    return archive.add(CandidateRecord(iteration=-1, sample_index=0 if code is None else 1, status="ok", kind="reference",
                                 name=name, code=code, dev=dev(score, 10)))


def test_scored_reference_code_is_chosen_when_nothing_generated_ran(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        add_reference(archive, "seed", 0.2, None)  # the seed has no code: nothing to prefer
        ta = add_reference(archive, "task_arithmetic", 0.1, "def merge(task_vectors):\n    return task_vectors[0]\n")
        failed = [add(archive, 0, i, None, status="syntax") for i in range(10)]
        pairs = select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2)).pairs
        assert {p.chosen_id for p in pairs} == {ta}
        assert {p.rejected_id for p in pairs} == set(failed[:2])  # nothing ran: failures fill in
        assert pairs[0].chosen.startswith("```python\ndef merge(") and pairs[0].prompt == "[]"
        assert select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2, references_as_fallback=False)).pairs == []
        scored = add(archive, 0, 10, 0.0)  # one generated candidate scored: the paper's rule applies again
        prefs = select_pairs(archive, 0, PreferenceConfig(bottom_fraction=0.2))
        assert {p.chosen_id for p in prefs.pairs} == {scored}


def test_copies_of_a_reference_are_never_chosen(tmp_path):
    # Measured in a control-arm run: chosen copies of the prompt's example against failures taught the generator to
    # copy the example (11/12 against 4/12 without DPO), and nothing new.
    with Archive(tmp_path / "a.sqlite") as archive:
        ta = add_reference(archive, "task_arithmetic", 0.1, "def merge(task_vectors):\n    return task_vectors[0]\n")
        copies = [archive.add(CandidateRecord(iteration=0, sample_index=i, status="ok", reply=f"copy {i}", prompt="[]",
                                              dev=dev(0.1), duplicate_of=ta)) for i in range(2)]
        failed = [add(archive, 0, 2 + i, None, status="runtime") for i in range(10)]
        config = PreferenceConfig(top_fraction=0.25, bottom_fraction=0.25)
        assert select_pairs(archive, 0, config).pairs == []  # and the references are no fallback: copies ran
        allowed = select_pairs(archive, 0, config.model_copy(update={"chosen_copies": True})).pairs
        assert {p.chosen_id for p in allowed} == set(copies) and {p.rejected_id for p in allowed} <= set(failed)
        new = add(archive, 0, 12, 0.05)  # one new function, worse than the copies: chosen all the same
        prefs = select_pairs(archive, 0, config)
        assert {p.chosen_id for p in prefs.pairs} == {new}
        assert set(copies).isdisjoint(p.chosen_id for p in prefs.pairs)


def test_pairs_of_the_main_arms_samples_on_the_rejected_replys_prompt(tmp_path):
    with Archive(tmp_path / "a.sqlite") as archive:
        def put(index: int, score: float | None, prompt: str, **kw) -> int:
            status = "ok" if score is not None else "runtime"
            return archive.add(CandidateRecord(0, index, status, reply=f"r{index}", prompt=prompt, dev=dev(score), **kw))

        best = put(0, 0.5, "[1]")
        worst = put(1, 0.1, "[1]")
        control = put(2, 0.9, "[1]", arm="control")  # better, but sampled without DPO: never paired
        repair = put(3, 0.8, "[2]", proposal="repair", parent_id=worst)  # answers its own prompt: never paired
        revision = put(5, 0.7, "[4]", proposal="revise", parent_id=best)  # likewise
        put(4, 0.0, "[1]", arm="control")
        config = PreferenceConfig(top_fraction=0.3, bottom_fraction=0.3, carry_over=0)
        prefs = select_pairs(archive, 0, config)
        assert [(p.chosen_id, p.rejected_id, p.prompt) for p in prefs.pairs] == [(best, worst, "[1]")]
        # Carried over from an earlier iteration's (evolve) prompt: the pair trains on this iteration's prompt.
        archive.add(CandidateRecord(1, 0, "ok", reply="new best", prompt="[3]", dev=dev(0.3)))
        archive.add(CandidateRecord(1, 1, "ok", reply="new worst", prompt="[3]", dev=dev(0.0)))
        carried = select_pairs(archive, 1, PreferenceConfig(top_fraction=0.5, bottom_fraction=0.5, carry_over=1))
        assert (best, "[3]") in {(p.chosen_id, p.prompt) for p in carried.pairs}
        assert not {control, repair, revision} & {p.chosen_id for p in carried.pairs}


def test_pairs_whose_prompt_leaves_no_room_for_a_reply_are_dropped(tiny_model_dir):
    import json

    from selfdev.dpo import MIN_REPLY_TOKENS, fitting_pairs
    from selfdev.preferences import PreferencePair

    short = json.dumps([{"role": "user", "content": "merge"}])
    long = json.dumps([{"role": "user", "content": "merge the task vectors " * 200}])
    pairs = [PreferencePair(short, "a", "b", 1, 2), PreferencePair(long, "a", "b", 3, 4)]
    assert fitting_pairs(str(tiny_model_dir), pairs, 4096) == pairs
    assert fitting_pairs(str(tiny_model_dir), pairs, 200 + MIN_REPLY_TOKENS) == pairs[:1]
