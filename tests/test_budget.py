"""The wall-clock budget: the plan fits, cuts in order, says what each cut costs, survives a resume, stops iterations."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from selfdev import budget
from selfdev.config import DiscoveryConfig
from selfdev.merging.baseline_results import GridWork
from selfdev.throughput import Throughput


def config(**overrides) -> DiscoveryConfig:
    data = {
        "experts": {"models": ["a", "b", "c"]},
        "iterations": 2,
        "cascade": {"slices": [10, 30]},
        "selection": {"finalists": 2, "problems": 30},
        "test": {"limit": 60},
        "generator": {"samples_per_iteration": 12},
        "baselines": {"task_arithmetic": {"weight": [0.2, 0.4, 0.6]}, "ties": {"weight": [0.4], "density": [0.5]}},
        "budget": {"minutes": 55},
    }
    data.update(overrides)
    return DiscoveryConfig.model_validate(data)


CACHED = lambda overrides: True  # noqa: E731 - every expert built: the experts stage only loads them
NOTHING_CACHED = lambda overrides: False  # noqa: E731
DEBATE = str(Path(__file__).resolve().parents[1] / "configs" / "experts-embedded.yaml")


def throughput(seconds: float) -> Throughput:
    return Throughput(8, seconds, seconds, "float32", "float32", "AVX2")


def plan(seconds: float, **overrides) -> budget.Plan:
    return budget.plan(config(**overrides), throughput(seconds), dev_size=100, test_size=1000, experts_cached=CACHED)


def test_eval_cost_grows_with_problems_and_has_a_fixed_part():
    t = throughput(40)
    assert t.eval(8) == pytest.approx(40) and t.eval(0) == 0
    assert t.eval(4) > 20 and t.eval(16) < 80 and t.eval(16) > t.eval(8)


def test_every_batch_pays_the_fixed_part_again():
    # A fresh make run (AVX512 without AMX): 8 problems 57 s, then 34 problems took 104 s and 69 (64 + 5) 224 s.
    t = Throughput(8, 57.0, 57.0, "bfloat16x2", "bfloat16", "AVX512", fixed=0.75, batch_size=64)
    assert t.eval(34) == pytest.approx(104, rel=0.05)
    assert t.eval(69) == pytest.approx(t.eval(64) + t.eval(5)) and t.eval(69) == pytest.approx(224, rel=0.1)
    assert dataclasses.replace(t, batch_size=None).eval(69) < 0.8 * t.eval(69)


def test_sampling_pays_the_fixed_part_once_per_generator_batch():
    # The fresh make run's measurement (AVX512 without AMX); on that CPU bench_generator's 48 paper replies of 320
    # tokens took 488 and 513 s (T 0.8 and 1.0, probing included), four generator batches of 12.
    t = Throughput(8, 57.0, 57.0, "bfloat16x2", "bfloat16", "AVX512", fixed=0.75, batch_size=64)
    units = budget.SAMPLE_PER_PROBLEM * 320 / 256
    one = budget.sampling_seconds(12, units, 12, t)
    assert budget.sampling_seconds(48, units, 12, t) == pytest.approx(4 * one)
    assert budget.sampling_seconds(13, units, 12, t) == pytest.approx(one + t.eval(units))
    # The evaluation's batches of 64 would call 48 replies one batch and a rest: further from what they took.
    assert t.eval(48 * units) < budget.sampling_seconds(48, units, 12, t) < 488
    assert budget.sampling_seconds(12, units, 12, dataclasses.replace(t, generator_scale=3.0)) == pytest.approx(3 * one)


def test_a_fast_machine_gets_more_problems_a_slow_one_fewer_and_both_fit():
    fast, slow = plan(2), plan(40)
    assert fast.scale > 1 and fast.planned.test > 60 and not any("->" in c and "test" in c and "60 -> " not in c for c in fast.cuts())
    assert slow.scale < 1 and slow.planned.slices[-1] < 30
    for p in (fast, slow):
        assert p.total_seconds <= 0.9 * 55 * 60
        s = p.planned
        assert s.slices == sorted(s.slices) and s.slices[-1] + s.selection <= 100  # search and selection share dev
    cut = next(c for c in slow.cuts() if c.startswith("test problems"))
    assert "smallest detectable paired difference 0.20 ->" in cut


def test_when_nothing_fits_cuts_come_in_order_and_are_said():
    p = plan(400)
    cuts = " | ".join(p.cuts())
    assert p.scale == pytest.approx(0.25)
    assert "baselines' grid: 4 -> 2 points" in cuts and p.planned.baselines["task_arithmetic"] == {"weight": [0.4]}
    assert p.planned.samples < 12 and p.planned.iterations == 1
    assert not any(c.startswith("DPO steps") for c in p.cuts())  # one iteration: no DPO to cap
    assert any(line.startswith("estimate:") for line in p.describe())


def test_plan_round_trip_and_apply(tmp_path):
    p = plan(40)
    p.save(tmp_path / "plan.json")
    back = budget.Plan.load(tmp_path / "plan.json")
    assert back == p
    applied = back.apply(config())
    assert applied.cascade.slices == p.planned.slices and applied.test.limit == p.planned.test
    assert applied.selection.problems == p.planned.selection and applied.iterations == p.planned.iterations
    assert budget.Plan.load(tmp_path / "missing.json") is None


def test_dpo_is_costed_by_the_steps_its_pairs_take():
    from selfdev.preferences import most_pairs

    c = config(preferences={"top_fraction": 0.25, "bottom_fraction": 0.25, "carry_over": 3}, dpo={"epochs": 2})
    assert most_pairs(12, 0, c.preferences) == 3 * 3 and most_pairs(12, 1, c.preferences) == (3 + 3) * 3
    assert most_pairs(2, 0, c.preferences) == 1  # one chosen and one rejected at least
    sizes = budget.requested_sizes(c, 1000)
    assert budget.dpo_steps(c, sizes, 0) == 18  # 9 pairs, two epochs, one pair a step
    t = throughput(40)
    assert budget.estimate(c, sizes, t, experts_cached=CACHED)["dpo"] == pytest.approx(budget.dpo_seconds(t, 18))
    assert budget.dpo_seconds(t, 18) == pytest.approx((budget.DPO_LOAD_PROBES + 18 * budget.DPO_STEP_PROBES) * 40)
    # Twice the samples, four times the pairs; a cap on the steps (dpo.max_steps) bounds them.
    assert budget.dpo_steps(c, dataclasses.replace(sizes, samples=24), 0) == 72
    assert budget.dpo_steps(c, dataclasses.replace(sizes, dpo_steps=5), 0) == 5
    assert c.dpo.steps(9) == 18 and c.dpo.model_copy(update={"max_steps": 4}).steps(9) == 4
    assert c.dpo.model_copy(update={"epochs": 1.5}).steps(3) == 5  # the trainer rounds a part epoch up


def test_the_plan_caps_dpo_steps_to_their_share_of_the_budget_and_before_it_cuts_samples():
    c = config(preferences={"top_fraction": 0.25, "bottom_fraction": 0.25}, dpo={"epochs": 2})
    # 18 steps at 40 s a probe would take 13.6 min of 55: the cap (15%, 8.25 min) leaves 10.
    p = budget.plan(c, throughput(40), dev_size=100, test_size=1000, experts_cached=CACHED)
    assert p.planned.samples == 12 and p.planned.dpo_steps == 10 and p.estimate["dpo"] <= 0.15 * 55 * 60
    assert "DPO steps: at most 10 a DPO (a random subset of its pairs)" in p.cuts()
    assert p.apply(c).dpo.max_steps == 10 and p.total_seconds <= 0.9 * 55 * 60
    # Where even the smallest problem counts do not fit, fewer steps come before fewer samples.
    slow = budget.plan(c, throughput(65), dev_size=100, test_size=1000, experts_cached=CACHED)
    assert slow.planned.samples == 12 and slow.planned.dpo_steps < 10
    # A run whose DPOs fit their share keeps its steps.
    small = config(dpo={"epochs": 2})  # the paper's fractions: 1 pair of 12 samples
    assert budget.plan(small, throughput(40), dev_size=100, test_size=1000, experts_cached=CACHED).planned.dpo_steps is None


def test_deadline_stops_an_iteration_whose_dpo_would_crowd_out_selection_and_test():
    p = plan(40)
    now = [p.started_at]
    deadline = budget.Deadline(p, clock=lambda: now[0])
    spare = 55 * 60 - (p.estimate["selection"] + p.estimate["test"] + budget.iteration_estimate(p))
    fits = max(k for k in range(1, 1000) if budget.dpo_seconds(p.throughput, k) <= spare)
    assert deadline.affords_iteration(dpo_steps=fits) and not deadline.affords_iteration(dpo_steps=fits + 1)
    # More pairs than the plan capped (the deadline raised the samples) get the steps that fit, not a skipped DPO.
    assert deadline.dpo_steps_that_fit() == fits and deadline.dpo_steps_that_fit(arms=2) < fits
    now[0] += 55 * 60
    assert deadline.dpo_steps_that_fit() == 0


def test_deadline_stops_an_iteration_that_would_crowd_out_selection_and_test():
    p = plan(40)
    now = [p.started_at]
    deadline = budget.Deadline(p, clock=lambda: now[0])
    assert deadline.affords_iteration()
    now[0] += 55 * 60 - (p.estimate["selection"] + p.estimate["test"]) + 1
    assert not deadline.affords_iteration() and deadline.left() > 0


def test_an_iteration_gets_the_samples_the_time_left_affords_between_the_plans_and_the_configs():
    p = plan(400)  # a slow machine: the plan cut the samples
    assert p.planned.samples < 12 and p.requested.samples == 12
    now = [p.started_at]
    deadline = budget.Deadline(p, clock=lambda: now[0])
    e = p.estimate
    # The estimate before any iteration: at the time the plan gave it, the plan's count.
    now[0] = p.started_at + 55 * 60 - (e["selection"] + e["test"] + budget.iteration_estimate(p))
    assert deadline.samples_for(0) == p.planned.samples
    # An iteration took 10 s a sample: the next gets the config's 12, not more, and with two arms fewer.
    deadline.record_iteration(p.planned.samples, 10.0 * p.planned.samples)
    assert deadline.seconds_per_reply() == pytest.approx(10.0)
    now[0] = p.started_at + 55 * 60 - (e["selection"] + e["test"] + 10.0 * 9)
    assert deadline.samples_for(0) == 9 and deadline.samples_for(0, arms=2) == max(p.planned.samples, 4)
    now[0] -= 3600
    assert deadline.samples_for(0) == 12
    # The plan's margin (budget.fill) is kept out of an iteration's share.
    kept = budget.Deadline(p, clock=lambda: now[0], margin=3600, spent=deadline.spent)
    assert kept.samples_for(0) == 9
    # Never below the plan's count: with no time left the deadline stops iterations instead.
    now[0] = p.started_at + 55 * 60
    assert deadline.samples_for(0) == p.planned.samples and not deadline.affords_iteration()


def test_the_time_left_is_shared_with_the_later_iterations_and_their_dpo():
    p = plan(40)  # the plan fits 2 iterations of 12: nothing to raise
    assert p.planned.iterations == 2 and p.planned.samples == 12
    p = budget.Plan(**{**p.__dict__, "planned": dataclasses.replace(p.planned, samples=4)})
    now = [p.started_at]
    deadline = budget.Deadline(p, clock=lambda: now[0])
    deadline.record_iteration(4, 40.0)  # 10 s a sample
    fixed = p.estimate["selection"] + p.estimate["test"]
    now[0] = p.started_at + 55 * 60 - (fixed + deadline.dpo_estimate() + 2 * 10.0 * 8 + 1)  # 1 s: rounding
    assert deadline.samples_for(0) == 8  # two iterations of 8 and the DPO between them
    assert deadline.samples_for(1) == 12  # the last iteration: all of it, capped at the config's


def test_budget_is_off_by_default_and_validated():
    assert DiscoveryConfig.model_validate({"experts": {"models": ["a"]}}).budget.minutes is None
    with pytest.raises(ValueError):
        config(budget={"minutes": -1})


def test_control_arm_and_repairs_are_counted():
    t = throughput(40)
    plain = budget.iteration_seconds(config(), budget.requested_sizes(config(), 1000), t)
    for generator in ({"control": True}, {"repair_attempts": 2}):
        c = config(generator={"samples_per_iteration": 12, **generator})
        assert budget.iteration_seconds(c, budget.requested_sizes(c, 1000), t) > 1.3 * plain
    # A plan is decoded before the code: more tokens sampled per reply, a little more time.
    planned = config(generator={"samples_per_iteration": 12, "plan_temperature": 1.0})
    c = config(generator={"samples_per_iteration": 12})
    alone = budget.iteration_seconds(c, budget.requested_sizes(c, 1000), t)
    assert alone < budget.iteration_seconds(planned, budget.requested_sizes(planned, 1000), t) < 1.3 * alone


def test_a_new_run_measures_plans_and_a_resume_keeps_the_plan(tmp_path, tiny_model_dir, tiny_expert_dirs):
    from selfdev.loop import _keep_to_budget
    from selfdev.run_dir import RunDir

    c = config(
        seed=str(tiny_model_dir), experts={"models": [str(p) for p in tiny_expert_dirs]}, task="arithmetic",
        backend={"batch_size": 8}, budget={"minutes": 5, "probe_problems": 2},
        generator={"model": str(tiny_expert_dirs[0]), "samples_per_iteration": 12},  # the seed's shape: 1.00x
    )
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    lines: list[str] = []
    planned, deadline = _keep_to_budget(c, run, resume=False, data_dir=None, log=lines.append)
    assert run.plan.is_file() and deadline is not None
    assert any(line.startswith("budget: 1 and 2 problems took") for line in lines)
    assert any(line.startswith("estimate:") for line in lines)
    assert "budget: the generator has 1.00x the seed's parameters; sampling and DPO are costed so" in lines
    assert budget.Plan.load(run.plan).throughput.generator_scale == 1.0
    again, _ = _keep_to_budget(c, run, resume=True, data_dir=None, log=lines.append)
    assert again == planned and "budget: keeping the plan" in " ".join(lines)


def test_fixed_share_from_two_probe_sizes():
    from selfdev.throughput import MAX_FIXED, fixed_share

    # 27 problems 42 s and 55 problems 66 s: 0.86 s a problem over 19 s fixed; at 8 problems 26 s, 73% fixed.
    half, full = 19 + 0.857 * 4, 19 + 0.857 * 8
    assert fixed_share(half, full) == pytest.approx(19 / full, abs=0.01)
    assert fixed_share(10, 20) == pytest.approx(0.05)  # all per problem: floor
    # All fixed, or even faster with more problems: noise at probe sizes this small; the ceiling keeps a cost per problem.
    assert fixed_share(20, 20) == fixed_share(58, 57) == pytest.approx(MAX_FIXED)


def test_a_larger_generator_costs_sampling_and_dpo_by_its_size(tiny_model_dir):
    from dataclasses import replace

    from selfdev.throughput import parameters

    c, sizes = config(), budget.requested_sizes(config(), 1000)
    same, larger = throughput(40), replace(throughput(40), generator_scale=3.0)
    base, big = (budget.estimate(c, sizes, t, experts_cached=CACHED) for t in (same, larger))
    assert big["experts"] == base["experts"] and big["test"] == base["test"]  # the seed's own work is unchanged
    sampling = budget.iteration_seconds(c, sizes, larger) - budget.iteration_seconds(c, sizes, same)
    assert sampling == pytest.approx(2 * same.eval(12 * budget.SAMPLE_PER_PROBLEM * 384 / 256))
    assert big["iterations"] - base["iterations"] == pytest.approx(2 * sampling)
    assert big["dpo"] == pytest.approx(3 * base["dpo"]) and base["dpo"] > 0
    assert budget.plan(c, larger, dev_size=100, test_size=1000, experts_cached=CACHED).scale < plan(40).scale
    # Counted from the safetensors headers: embeddings, layers and norms of the tiny model.
    from transformers import AutoModelForCausalLM

    assert parameters(tiny_model_dir) == AutoModelForCausalLM.from_pretrained(tiny_model_dir).num_parameters()


def test_parameters_of_a_folder_without_safetensors_come_from_its_config(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from selfdev.errors import UserError
    from selfdev.throughput import parameters

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    (tmp_path / "bin").mkdir()
    model.config.save_pretrained(tmp_path / "bin")
    torch.save(model.state_dict(), tmp_path / "bin" / "pytorch_model.bin")  # an older checkpoint's format
    assert parameters(tmp_path / "bin") == model.num_parameters()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither safetensors weights nor a readable config.json"):
        parameters(tmp_path / "empty")


def test_experts_cached_at_a_cut_setting_give_their_time_to_discovery():
    # A fresh machine: the debate experts would not fit, so the plan trains them on fewer problems and
    # cuts discovery. The next run finds those experts built and must plan with them, not build them again.
    debate = {"experts": {"debate": DEBATE, "debate_overrides": {"evaluation": {"limit": 8}}}}
    c = config(**debate)
    fresh = budget.plan(c, throughput(60), dev_size=100, test_size=1000, experts_cached=NOTHING_CACHED)
    built = fresh.planned.debate_overrides
    assert built != {"evaluation": {"limit": 8}} and fresh.planned.iterations == 1 and not fresh.experts_cached
    again = budget.plan(c, throughput(60), dev_size=100, test_size=1000, experts_cached=lambda o: o == built)
    assert again.experts_cached and again.planned.debate_overrides == built
    assert again.estimate["experts"] == budget.EXPERT_LOAD_SECONDS < fresh.estimate["experts"]
    assert (again.planned.iterations, again.planned.samples) > (fresh.planned.iterations, fresh.planned.samples)


def test_the_experts_finetuning_time_scales_with_the_debates_training_problems():
    # With the debate itself free, what is left is the SFTs (and loading): a cut to 8 of the recipe's 24 training
    # problems labels at most a third of the examples, and its SFTs cost a third (they used to cost the recipe's).
    t = Throughput(8, 40.0, 0.0, "float32", "float32", "AVX2")
    cut = {"train": [{"task": "arithmetic", "limit": 4}, {"task": "gsm8k", "limit": 4}]}
    c = config(experts={"debate": DEBATE})
    full, fewer = (budget._experts(c, o, t) - budget.EXPERT_LOAD_SECONDS for o in ({}, cut))
    assert full == pytest.approx(5.5 * 40.0) and fewer == pytest.approx(full / 3)
    assert budget._experts(config(), {}, t) == budget.EXPERT_LOAD_SECONDS  # named experts are only loaded


def test_baselines_in_the_shared_log_cost_only_the_problems_they_lack():
    c, t = config(), throughput(60)
    sizes = budget.requested_sizes(c, 1000)
    full = budget.estimate(c, sizes, t, experts_cached=CACHED)["baselines"]
    # Every point costs its merge and its search-dev problems, each method's tuned point its test problems.
    everything = budget.all_baselines(sizes)
    assert everything.dev == [("task_arithmetic", 30)] * 3 + [("ties", 30)] and everything.test == {"task_arithmetic": 60, "ties": 60}
    # An earlier run on 10 search-dev problems: 20 are left a point, and test is pending until the grid is whole.
    grown = lambda s: GridWork(dev=[(m, n - 10) for m, n in budget.all_baselines(s).dev], test=budget.all_baselines(s).test)  # noqa: E731
    part = budget.estimate(c, sizes, t, experts_cached=CACHED, baselines_work=grown)["baselines"]
    assert 0 < part < full
    assert part == pytest.approx(full - 4 * (t.eval(30) - t.eval(20)))
    done = lambda s: GridWork(dev=[(m, 0) for m, _ in budget.all_baselines(s).dev], test={})  # noqa: E731
    assert budget.estimate(c, sizes, t, experts_cached=CACHED, baselines_work=done)["baselines"] == 0
    # The plan gives the time the log saves to larger problem counts.
    cached = budget.plan(c, t, dev_size=100, test_size=1000, experts_cached=CACHED, baselines_work=done)
    assert cached.estimate["baselines"] == 0 and cached.scale > plan(60).scale
