"""Monte Carlo of the run's selection protocol with known true gains: is the headline unbiased, is the best kept?

No model: candidates are Bernoulli answerers with true accuracies seed + gain,
gain ~ N(0, sd). Their answers share a per-problem latent with probability
`agreement` (merges of the same experts get mostly the same problems right), so
paired comparisons see realistic correlation. Each repetition runs

- the protocol of `selfdev.scores` as the loop runs it: the statistical
  cascade (`significantly_worse` against the best by `rank_key`), the top
  finalists re-scored on fresh selection problems, one `pick`, tested once on
  fresh test problems, paired against the seed;
- and the rule it replaced, in the same repetition on the same answers: a
  fixed margin below the running maximum per slice, the winner taken by depth
  then dev score, its dev score reported.

    python benchmarks/sim_selection.py --reps 2000
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np

from selfdev import scores
from selfdev.scores import Evaluation


@dataclass
class Simulated:
    id: int
    true: float
    answers: np.ndarray  # every problem of every split, True where right
    dev: Evaluation | None = None
    selection: Evaluation | None = None


@dataclass(frozen=True)
class Setting:
    candidates: int = 12
    slices: tuple[int, ...] = (10, 30)
    selection: int = 30
    finalists: int = 2
    test: int = 60
    seed_accuracy: float = 0.35
    gain_sd: float = 0.02
    agreement: float = 0.7
    alpha: float = 0.1
    margin: float = 0.1  # the old rule's


def _answers(rng: np.random.Generator, accuracy: float, latent: np.ndarray, agreement: float) -> np.ndarray:
    shared = rng.random(latent.shape) < agreement
    own = rng.random(latent.shape)
    return np.where(shared, latent, own) < accuracy


def _evaluation(answers: np.ndarray, lo: int, hi: int) -> Evaluation:
    return Evaluation.of((str(j) for j in range(lo, hi)), answers[lo:hi])


def _new_rule(pool: list[Simulated], seed: Simulated, s: Setting) -> tuple[Simulated, bool]:
    """The cascade, selection and pick as selfdev runs them; returns the pick and whether the best was kept."""
    last = s.slices[-1]
    seed.dev = _evaluation(seed.answers, 0, last)
    everyone = [seed]
    for c in pool:
        bar = scores.best(everyone).dev
        for n in s.slices:
            c.dev = _evaluation(c.answers, 0, n)
            if scores.significantly_worse(c.dev, bar, s.alpha):
                break
        everyone.append(c)
    truly_best = max(pool, key=lambda c: c.true)
    kept = truly_best.dev.n == last
    finalists = scores.ranked(pool)[: s.finalists]
    for c in finalists:
        c.selection = _evaluation(c.answers, last, last + s.selection)
    return scores.pick(finalists), kept


def _old_rule(pool: list[Simulated], seed: Simulated, s: Setting) -> tuple[Simulated, float, bool, float]:
    """Fixed margin against the running maximum per slice; winner by depth then dev score."""
    best = {n: float(seed.answers[:n].mean()) for n in s.slices}
    depth, score = {}, {}
    for c in pool:
        for stage, n in enumerate(s.slices):
            acc = float(c.answers[:n].mean())
            depth[c.id], score[c.id] = n, acc
            best[n] = max(best[n], acc)
            if stage < len(s.slices) - 1 and acc < best[n] - s.margin:
                break
    truly_best = max(pool, key=lambda c: c.true)
    winner = min(pool, key=lambda c: (-depth[c.id], -score[c.id], c.id))
    reported = score[winner.id] - float(seed.answers[: depth[winner.id]].mean())
    return winner, reported, depth[truly_best.id] == s.slices[-1], float(np.mean(list(depth.values())))


def simulate(setting: Setting, reps: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    total = setting.slices[-1] + setting.selection + setting.test
    test_lo = setting.slices[-1] + setting.selection
    rows = []
    for _ in range(reps):
        latent = rng.random(total)
        gains = rng.normal(0.0, setting.gain_sd, setting.candidates)
        seed_model = Simulated(0, setting.seed_accuracy, _answers(rng, setting.seed_accuracy, latent, setting.agreement))
        pool = [
            Simulated(i + 1, setting.seed_accuracy + g, _answers(rng, setting.seed_accuracy + g, latent, setting.agreement))
            for i, g in enumerate(gains)
        ]
        picked, kept = _new_rule(pool, seed_model, setting)
        test = scores.paired(_evaluation(picked.answers, test_lo, total), _evaluation(seed_model.answers, test_lo, total), resamples=200)
        search_gain = picked.dev.accuracy - seed_model.dev.on(picked.dev.ids).accuracy
        old, old_reported, old_kept, old_depth = _old_rule(pool, seed_model, setting)
        best_true = max(c.true for c in pool)
        rows.append(
            {
                "true_gain": picked.true - setting.seed_accuracy,
                "test_gain": test.diff,
                "covered": test.ci[0] <= picked.true - setting.seed_accuracy <= test.ci[1],
                "search_gain": search_gain,
                "picked_best": picked.true == best_true,
                "kept_best": kept,
                "old_true_gain": old.true - setting.seed_accuracy,
                "old_reported_gain": old_reported,
                "old_picked_best": old.true == best_true,
                "old_kept_best": old_kept,
                "depth": float(np.mean([c.dev.n for c in pool])),
                "old_depth": old_depth,
            }
        )
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    def mean(key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    bias = np.array([r["test_gain"] - r["true_gain"] for r in rows])
    return {
        "reps": len(rows),
        "new": {
            "reported_test_gain": mean("test_gain"),
            "true_gain": mean("true_gain"),
            "bias": float(bias.mean()),
            "bias_se": float(bias.std(ddof=1) / np.sqrt(len(rows))),
            "ci_coverage": mean("covered"),
            "search_dev_gain": mean("search_gain"),
            "kept_best_rate": mean("kept_best"),
            "picked_best_rate": mean("picked_best"),
            "dev_problems_per_candidate": mean("depth"),
        },
        "old": {
            "reported_dev_gain": mean("old_reported_gain"),
            "true_gain": mean("old_true_gain"),
            "kept_best_rate": mean("old_kept_best"),
            "picked_best_rate": mean("old_picked_best"),
            "dev_problems_per_candidate": mean("old_depth"),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--gain-sd", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setting = Setting(candidates=args.candidates, gain_sd=args.gain_sd)
    print(json.dumps({"setting": setting.__dict__, **simulate(setting, args.reps, args.seed)}, indent=2))


if __name__ == "__main__":
    main()
