"""The procedural arithmetic task of the multiagent debate and Multiagent Finetuning papers.

Each problem is `a+b*c+d-e*f` with six integers drawn uniformly from [0, 30),
asked as in Du et al. (2023). Splits are generated, not loaded: each split has
its own seed, and an expression belongs to exactly one split (chosen by a hash
of the expression), so train, dev and test can never share a problem however
many train problems are asked for.
"""

from __future__ import annotations

import hashlib
import random
from types import MappingProxyType

from evals.tasks.base import DataDir, Example, Task
from evals.tasks.numeric import extract_number, numbers_equal

ARITHMETIC_SEED = 20230523
_SPLITS = ("train", "dev", "test")  # position = hash bucket and seed offset
_FEWSHOT_SEED_OFFSET = 100
_DEFAULT_TRAIN_SIZE = 1000
_LOW, _HIGH = 0, 30  # integers in [0, 30)


class Arithmetic(Task):
    name = "arithmetic"
    stop = ("\nQuestion:", "\nUser:", "</s>", "<|im_end|>")
    max_new_tokens = 128
    split_seed = ARITHMETIC_SEED
    split_strategy = "generated: seed + split offset (train 0, dev 1, test 2); sha256(expr) % 3 picks the split"
    split_sizes = MappingProxyType({"dev": 100, "test": 1000, "train": _DEFAULT_TRAIN_SIZE})

    def examples(self, split: str, data_dir: DataDir = None, limit: int | None = None) -> list[Example]:
        """`data_dir` is ignored (nothing to load). For train, `limit` may exceed the default size."""
        self._check_split(split, limit)
        if split == "train":
            count = _DEFAULT_TRAIN_SIZE if limit is None else limit
        else:
            count = self.split_sizes[split] if limit is None else min(limit, self.split_sizes[split])
        seed = self.split_seed + _SPLITS.index(split)
        return [
            Example(id=f"arithmetic/{split}/{i}", question=question(ops), gold=str(answer(ops)),
                    meta={"split": split, "expression": expression(ops)})
            for i, ops in enumerate(generate(split, seed, count))
        ]

    def fewshot(self) -> list[tuple[str, str]]:
        # Drawn from the train bucket with their own seed: never a dev or test problem.
        operands = generate("train", self.split_seed + _FEWSHOT_SEED_OFFSET, 5)
        return [(question(ops), worked_solution(ops)) for ops in operands]

    def read_answer(self, text: str, *, truncated: bool) -> str | None:
        return extract_number(text, truncated=truncated)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return numbers_equal(predicted, gold)


Operands = tuple[int, int, int, int, int, int]


def generate(split: str, seed: int, count: int) -> list[Operands]:
    """`count` distinct problems of `split`'s hash bucket, from a generator seeded with `seed`."""
    bucket = _SPLITS.index(split)
    rng = random.Random(seed)
    seen: set[Operands] = set()
    problems: list[Operands] = []
    while len(problems) < count:
        ops = tuple(rng.randrange(_LOW, _HIGH) for _ in range(6))
        if ops in seen or _bucket(expression(ops)) != bucket:
            continue
        seen.add(ops)
        problems.append(ops)
    return problems


def expression(ops: Operands) -> str:
    a, b, c, d, e, f = ops
    return f"{a}+{b}*{c}+{d}-{e}*{f}"


def question(ops: Operands) -> str:
    return f"What is the result of {expression(ops)}? Make sure to state your answer at the end of the response."


def answer(ops: Operands) -> int:
    a, b, c, d, e, f = ops
    return a + b * c + d - e * f


def worked_solution(ops: Operands) -> str:
    a, b, c, d, e, f = ops
    return (
        f"Multiplication comes first: {b}*{c} = {b * c} and {e}*{f} = {e * f}. "
        f"Then {a} + {b * c} + {d} - {e * f} = {answer(ops)}.\nThe answer is {answer(ops)}."
    )


def _bucket(expr: str) -> int:
    return int.from_bytes(hashlib.sha256(expr.encode()).digest()[:8], "big") % len(_SPLITS)
