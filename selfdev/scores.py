"""Scores: one model's per-problem outcomes, their intervals, paired comparisons, and the one ranking.

Every decision a run makes reads this module, never a sort key of its own: the
cascade (`significantly_worse`), DPO pairs, carry-over, top-K, selection,
export, progress and the report (`rank_key`, `ranked`).

An `Evaluation` keeps which problems a model got right, so two models are
always compared on the problems both saw, paired: exact McNemar on the
discordant problems and a paired bootstrap interval of the difference, as
lm-evaluation-harness's paired comparison does (an unpaired test of two
accuracies is the wrong null model here: the problems are shared).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence, TypeVar

import numpy as np
from scipy.stats import binomtest, fisher_exact, mannwhitneyu, t as student_t

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 10_000


@dataclass(frozen=True)
class Evaluation:
    """Which of the problems `ids` a model answered correctly; immutable."""

    ids: tuple[str, ...]
    correct: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.correct):
            raise ValueError(f"{len(self.ids)} problem ids but {len(self.correct)} outcomes")
        if not self.ids:
            raise ValueError("an evaluation needs at least one problem")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("problem ids of an evaluation must be unique")

    @classmethod
    def of(cls, ids: Iterable[str], correct: Iterable[bool]) -> "Evaluation":
        return cls(tuple(str(i) for i in ids), tuple(bool(c) for c in correct))

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> "Evaluation":
        """From `evals.evaluate`'s per-problem records (`id`, `correct`)."""
        records = list(records)
        return cls.of((r["id"] for r in records), (r["correct"] for r in records))

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def k(self) -> int:
        return sum(self.correct)

    @property
    def accuracy(self) -> float:
        return self.k / self.n

    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the accuracy (sound at small n and near 0 or 1, unlike the normal one)."""
        return wilson_interval(self.k, self.n)

    def prefix(self, n: int) -> "Evaluation":
        return Evaluation(self.ids[:n], self.correct[:n])

    def on(self, ids: Iterable[str]) -> "Evaluation":
        """Only the problems in `ids` (in this evaluation's order)."""
        keep = set(ids)
        pairs = [(i, c) for i, c in zip(self.ids, self.correct) if i in keep]
        return Evaluation.of((i for i, _ in pairs), (c for _, c in pairs))

    def describe(self) -> str:
        lo, hi = self.interval()
        return f"{self.accuracy:.3f} [{lo:.2f}, {hi:.2f}] n={self.n}"

    def to_json(self) -> str:
        return json.dumps({"ids": list(self.ids), "correct": "".join("1" if c else "0" for c in self.correct)})

    @classmethod
    def from_json(cls, text: str | None) -> "Evaluation | None":
        if not text:
            return None
        data = json.loads(text)
        return cls.of(data["ids"], (c == "1" for c in data["correct"]))


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# -- paired comparison ---------------------------------------------------------------------


def _shared(a: Evaluation, b: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    b_by_id = dict(zip(b.ids, b.correct))
    ids = [i for i in a.ids if i in b_by_id]
    a_by_id = dict(zip(a.ids, a.correct))
    return np.array([a_by_id[i] for i in ids], dtype=bool), np.array([b_by_id[i] for i in ids], dtype=bool)


@dataclass(frozen=True)
class Paired:
    """Model A against model B on the problems both saw."""

    n: int
    a: float  # A's accuracy on the shared problems
    b: float
    only_a: int  # problems A got right and B wrong
    only_b: int
    p_value: float  # exact McNemar, two-sided
    ci: tuple[float, float]  # 95% paired bootstrap interval of a - b

    @property
    def diff(self) -> float:
        return self.a - self.b

    @property
    def significant(self) -> bool:
        return self.n > 0 and self.p_value < 0.05 and not (self.ci[0] <= 0.0 <= self.ci[1])

    def verdict(self) -> str:
        if self.n == 0:
            return "no shared problems"
        if not self.significant:
            return "no difference (within noise)"
        return "better" if self.diff > 0 else "worse"


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant problems."""
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired(a: Evaluation, b: Evaluation, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Paired:
    """Compare A with B on the problems both saw (McNemar, paired bootstrap)."""
    x, y = _shared(a, b)
    n = len(x)
    if n == 0:
        return Paired(0, math.nan, math.nan, 0, 0, 1.0, (math.nan, math.nan))
    only_a, only_b = int((x & ~y).sum()), int((~x & y).sum())
    diffs = x.astype(np.int8) - y.astype(np.int8)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return Paired(n, float(x.mean()), float(y.mean()), only_a, only_b, mcnemar_exact(only_a, only_b), (float(lo), float(hi)))


def significantly_worse(candidate: Evaluation, best: Evaluation, alpha: float) -> bool:
    """Whether `candidate` is worse than `best` on their shared problems, one-sided exact McNemar at `alpha`.

    The cascade's rule: a candidate goes on while this is False, so noise on a
    small slice never drops a candidate that merely looks a little worse.
    """
    x, y = _shared(candidate, best)
    worse, better = int((~x & y).sum()), int((x & ~y).sum())
    if worse + better == 0:
        return False
    return float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue) < alpha


# -- the one ranking -----------------------------------------------------------------------


class Ranked(Protocol):
    """Anything with a search-dev evaluation and an id: archive candidates, simulated ones."""

    @property
    def id(self) -> int | None: ...

    @property
    def dev(self) -> Evaluation | None: ...


R = TypeVar("R", bound=Ranked)


def rank_key(c: Ranked) -> tuple:
    """Best first: scored before unscored, deeper in the cascade first, then accuracy, then the earliest.

    The cascade's slices are prefixes of one problem list, so candidates at the
    same depth were scored on the same problems and their accuracies compare
    paired; a candidate that went deeper was never significantly worse than the
    best on the problems it shared with it.
    """
    if c.dev is None:
        return (1, 0, 0.0, c.id or 0)
    return (0, -c.dev.n, -c.dev.accuracy, c.id or 0)


def ranked(candidates: Iterable[R]) -> list[R]:
    return sorted(candidates, key=rank_key)


def best(candidates: Iterable[R]) -> R | None:
    return min((c for c in candidates if c.dev is not None), key=rank_key, default=None)


def preferred(a: Ranked, b: Ranked) -> bool:
    """Whether `a` is a DPO 'chosen' against `b`: scored, at least as deep, and better on the problems both saw."""
    if a.dev is None:
        return False
    if b.dev is None:
        return True
    return a.dev.n >= b.dev.n and a.dev.on(b.dev.ids).accuracy > b.dev.on(a.dev.ids).accuracy


class Finalist(Ranked, Protocol):
    @property
    def selection(self) -> Evaluation | None: ...


F = TypeVar("F", bound=Finalist)


def pick(finalists: Iterable[F], floor: Finalist | None = None) -> F | None:
    """The selected algorithm: best on the selection slice, ties to the better search rank. None when `floor` (the
    unmerged seed, scored on the same problems) scored more than that best: a merge below not merging is no find,
    and testing it would spend the test on a model the run already knows is worse (a 1.5B-generator run selected
    and tested a merge that answered 0 of 23 selection problems against the seed's 2 of 23 on search-dev)."""
    scored = [c for c in finalists if c.selection is not None]
    best = min(scored, key=lambda c: (-c.selection.accuracy, rank_key(c)), default=None)
    if best is not None and floor is not None and floor.selection is not None:
        if floor.selection.on(best.selection.ids).accuracy > best.selection.accuracy:
            return None
    return best


# -- summaries of many candidates ----------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    value: float
    ci: tuple[float, float]
    n: int

    def describe(self, digits: int = 3) -> str:
        if self.n == 0:
            return "–"
        return f"{self.value:.{digits}f} [{self.ci[0]:.{digits - 1}f}, {self.ci[1]:.{digits - 1}f}] n={self.n}"


def rate(k: int, n: int) -> Estimate:
    """A proportion with its Wilson interval (executable rate, repair success)."""
    return Estimate(k / n if n else math.nan, wilson_interval(k, n), n)


def mean_estimate(values: Sequence[float], bounds: tuple[float, float] = (-math.inf, math.inf)) -> Estimate:
    """Mean with a t interval, cut to `bounds` (an accuracy's [0, 1]: with two values the t interval alone spans
    several times that)."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, (math.nan, math.nan), 0)
    mean = statistics.fmean(values)
    if n == 1:
        return Estimate(mean, (math.nan, math.nan), 1)
    half = float(student_t.ppf(0.975, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return Estimate(mean, (max(bounds[0], mean - half), min(bounds[1], mean + half)), n)


def median_estimate(values: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Median with a percentile bootstrap interval."""
    n = len(values)
    if n == 0:
        return Estimate(math.nan, (math.nan, math.nan), 0)
    data = np.asarray(values, dtype=float)
    lo, hi = np.quantile(_bootstrap_medians(data, np.random.default_rng(seed), resamples), [0.025, 0.975])
    return Estimate(float(np.median(data)), (float(lo), float(hi)), n)


def _bootstrap_medians(data: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    return np.median(data[rng.integers(0, len(data), size=(resamples, len(data)))], axis=1)


@dataclass(frozen=True)
class Unpaired:
    """Group A against group B of different items (the replies of two generators): their difference, its 95%
    interval and a two-sided exact or rank test. Replies are not shared the way problems are, so this is unpaired."""

    a: Estimate
    b: Estimate
    diff: float
    ci: tuple[float, float]
    p_value: float

    def verdict(self) -> str:
        if self.a.n == 0 or self.b.n == 0:
            return "nothing to compare"
        if self.p_value >= 0.05 or self.ci[0] <= 0.0 <= self.ci[1]:
            return "no difference (within noise)"
        return "higher" if self.diff > 0 else "lower"

    def describe(self, digits: int = 2) -> str:
        if self.a.n == 0 or self.b.n == 0:
            return "–"
        lo, hi = self.ci
        return f"{self.diff:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}] p={self.p_value:.2g}: {self.verdict()}"


def rate_difference(k_a: int, n_a: int, k_b: int, n_b: int) -> Unpaired:
    """Two proportions: Newcombe's interval of the difference (from the two Wilson intervals) and Fisher's exact test."""
    a, b = rate(k_a, n_a), rate(k_b, n_b)
    if n_a == 0 or n_b == 0:
        return Unpaired(a, b, math.nan, (math.nan, math.nan), 1.0)
    d = a.value - b.value
    (l1, u1), (l2, u2) = a.ci, b.ci
    lo = d - math.sqrt((a.value - l1) ** 2 + (u2 - b.value) ** 2)
    hi = d + math.sqrt((u1 - a.value) ** 2 + (b.value - l2) ** 2)
    p = float(fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)
    return Unpaired(a, b, d, (lo, hi), p)


def median_difference(a: Sequence[float], b: Sequence[float], *, resamples: int = 2000, seed: int = 0) -> Unpaired:
    """Two medians: a bootstrap interval of their difference (each group resampled on its own) and the two-sided
    Mann-Whitney U test."""
    ea, eb = median_estimate(a, resamples=resamples, seed=seed), median_estimate(b, resamples=resamples, seed=seed)
    if not a or not b:
        return Unpaired(ea, eb, math.nan, (math.nan, math.nan), 1.0)
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diffs = _bootstrap_medians(x, rng, resamples) - _bootstrap_medians(y, rng, resamples)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    p = 1.0 if len(set(a) | set(b)) == 1 else float(mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return Unpaired(ea, eb, ea.value - eb.value, (float(lo), float(hi)), p)


def detectable_difference(n: int, discordant: float = 0.3) -> float:
    """About the smallest paired difference n problems can show (80% power, alpha 0.05, two-sided).

    With a share `discordant` of problems answered differently by the two models,
    the paired difference has standard deviation sqrt(discordant / n).
    """
    if n == 0:
        return math.inf
    return (Z95 + 0.8416) * math.sqrt(discordant / n)
