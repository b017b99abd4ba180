"""MATH (Hendrycks et al. 2021): competition problems, answers in \\boxed{}, judged by math-verify.

Named hendrycks_math, not math, so it can never shadow the standard library.
"""

from __future__ import annotations

import hashlib
import re
from types import MappingProxyType

from evals.data import load_math
from evals.errors import DataError
from evals.splits import MATH_DEV_SIZE, MATH_SPLIT_SEED, ranked, stratified_dev_test_split
from evals.tasks.base import DataDir, Example, Task
from evals.tasks.math_equiv import answers_equivalent, last_boxed

# The four Minerva prompt problems (Lewkowycz et al. 2022, from MATH train), the
# de-facto standard MATH few-shot set, plus one short number-theory problem of
# ours to make five. None of them is a MATH test problem (a test checks this).
FEWSHOT: tuple[tuple[str, str], ...] = (
    (
        "Find the domain of the expression $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.",
        "The expressions inside each square root must be non-negative. Therefore, $x-2 \\ge 0$, so "
        "$x\\ge2$, and $5 - x \\ge 0$, so $x \\le 5$. Also, the denominator cannot be equal to zero, so "
        "$5-x>0$, which gives $x<5$. Therefore, the domain of the expression is $\\boxed{[2,5)}$.",
    ),
    (
        "If $\\det \\mathbf{A} = 2$ and $\\det \\mathbf{B} = 12,$ then find $\\det (\\mathbf{A} \\mathbf{B}).$",
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B}) = "
        "(2)(12) = \\boxed{24}.$",
    ),
    (
        "Terrell usually lifts two 20-pound weights 12 times. If he uses two 15-pound weights instead, "
        "how many times must Terrell lift them in order to lift the same total weight?",
        "If Terrell lifts two 20-pound weights 12 times, he lifts a total of $2\\cdot 12\\cdot20=480$ "
        "pounds of weight. If he lifts two 15-pound weights instead for $n$ times, he will lift a total "
        "of $2\\cdot15\\cdot n=30n$ pounds of weight. Equating this to 480 pounds, we can solve for $n$: "
        "\\begin{align*}\n30n&=480\\\\\n\\Rightarrow\\qquad n&=480/30=\\boxed{16}\n\\end{align*}",
    ),
    (
        "If the system of equations\n\n\\begin{align*}\n6x-4y&=a,\\\\\n6y-9x &=b.\n\\end{align*}has a "
        "solution $(x, y)$ where $x$ and $y$ are both nonzero, find $\\frac{a}{b},$ assuming $b$ is nonzero.",
        "If we multiply the first equation by $-\\frac{3}{2}$, we obtain\n\n$$6y-9x=-\\frac{3}{2}a.$$"
        "Since we also know that $6y-9x=b$, we have\n\n$$-\\frac{3}{2}a=b\\Rightarrow\\frac{a}{b}="
        "\\boxed{-\\frac{2}{3}}.$$",
    ),
    (
        "How many positive divisors does $24$ have?",
        "Since $24 = 2^3 \\cdot 3$, every positive divisor of $24$ has the form $2^a 3^b$ with "
        "$0 \\le a \\le 3$ and $0 \\le b \\le 1$. So there are $(3+1)(1+1) = \\boxed{8}$ positive divisors.",
    ),
)

_SOURCE_SIZES = {"test": 5000, "train": 7500}
_LEVEL = re.compile(r"Level (\d)")


class MATH(Task):
    name = "math"
    stop = ("\nQuestion:", "\nUser:", "</s>", "<|im_end|>")
    max_new_tokens = 512
    split_seed = MATH_SPLIT_SEED
    split_strategy = (
        "sha256-rank within each subject of MATH test: equal dev share per subject (86 x 5 + 85 x 2), rest test; "
        "train whole (MATH train, for debate finetuning)"
    )
    split_sizes = MappingProxyType(
        {"dev": MATH_DEV_SIZE, "test": _SOURCE_SIZES["test"] - MATH_DEV_SIZE, "train": _SOURCE_SIZES["train"]}
    )

    def examples(self, split: str, data_dir: DataDir = None, limit: int | None = None) -> list[Example]:
        self._check_split(split, limit)
        source = "train" if split == "train" else "test"
        rows = load_math(source, data_dir)
        if len(rows) != _SOURCE_SIZES[source]:
            raise DataError(f"MATH {source} has {len(rows)} rows, expected {_SOURCE_SIZES[source]}")
        by_id: dict[str, dict] = {}
        for row in rows:
            by_id.setdefault(_example_id(source, row), row)  # ids are content hashes: a repeat is one problem
        if source == "test" and len(by_id) != len(rows):
            raise DataError("MATH test holds duplicate problems; ids would collide")  # the fixed split needs 5,000
        if split == "train":
            chosen = ranked(by_id, self.split_seed)
        else:
            strata: dict[str, list[str]] = {}
            for ex_id, row in by_id.items():
                strata.setdefault(row["type"], []).append(ex_id)
            chosen = stratified_dev_test_split(strata, self.split_seed, MATH_DEV_SIZE)[split]
        chosen = chosen[:limit] if limit is not None else chosen
        return [_example(ex_id, by_id[ex_id], split) for ex_id in chosen]

    def fewshot(self) -> list[tuple[str, str]]:
        return list(FEWSHOT)

    def read_answer(self, text: str, *, truncated: bool) -> str | None:
        # The box is MATH's only final marker, so a cut-off completion is read the same way.
        answer = last_boxed(text)
        return answer if answer else None

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return answers_equivalent(predicted, gold)


def subject_slug(subject: str) -> str:
    """"Counting & Probability" -> "counting_and_probability" (the hub's config names)."""
    return subject.lower().replace("&", "and").replace(" ", "_")


def _example_id(source: str, row: dict) -> str:
    # Content-derived rather than positional: the local copy and the hub mirror
    # agree on the problems but nothing promises they agree on their order.
    digest = hashlib.sha256(row["problem"].strip().encode()).hexdigest()[:12]
    return f"math/{source}/{subject_slug(row['type'])}/{digest}"


def _example(ex_id: str, row: dict, split: str) -> Example:
    gold = last_boxed(row["solution"])
    if not gold:
        raise DataError(f"{ex_id}: solution has no \\boxed{{}} answer")
    level = _LEVEL.search(str(row["level"]))
    return Example(
        id=ex_id,
        question=row["problem"],
        gold=gold,
        meta={"split": split, "subject": row["type"], "level": int(level.group(1)) if level else None},
    )
