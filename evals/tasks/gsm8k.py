"""GSM8K (Cobbe et al. 2021): grade-school word problems, scored by exact match on the final number."""

from __future__ import annotations

from types import MappingProxyType

from evals.data import load_gsm8k
from evals.errors import DataError
from evals.splits import GSM8K_DEV_SIZE, GSM8K_SPLIT_SEED, dev_test_split, ranked
from evals.tasks.base import DataDir, Example, Task
from evals.tasks.numeric import extract_number, normalize_number, numbers_equal

# Five short GSM8K *train* problems (ids are 0-based lines of train.jsonl), with
# their reference rationale minus the <<calculator>> annotations and ending in
# the answer format the extractor looks for. Constants, so the few-shot prefix is
# byte-identical across examples, runs and data sources.
FEWSHOT: tuple[tuple[str, str, str], ...] = (
    (
        "gsm8k/train/535",
        "Tim buys 3 dozen eggs.  Eggs cost $.50 each.  How much did he pay for eggs?",
        "He bought 3*12=36 eggs.\nSo they cost 36*.5=$18.\nThe answer is 18.",
    ),
    (
        "gsm8k/train/5955",
        "John takes a pill every 6 hours.  How many pills does he take a week?",
        "He takes 24/6=4 pills a day.\nSo he takes 4*7=28 pills a week.\nThe answer is 28.",
    ),
    (
        "gsm8k/train/1353",
        "In a zoo, a hare is 14 inches tall, while a camel is 24 times taller than the hare. "
        "How tall is the camel in feet?",
        "The camel is 14 x 24 = 336 tall in inches.\nSo, the camel is 336 / 12 = 28 feet tall.\nThe answer is 28.",
    ),
    (
        "gsm8k/train/2691",
        "Carla, Kyle, and Tasha caught 36 fish. If Kyle and Tasha caught the same number of fish "
        "and Carla caught 8, how many fish did Kyle catch?",
        "Kyle and Tasha caught 36 - 8 = 28 fish.\nKyle caught 28/2 = 14 fish.\nThe answer is 14.",
    ),
    (
        "gsm8k/train/5858",
        "Marion\u2019s bike cost $356. Stephanie\u2019s bike is worth twice as much. "
        "What is the total price of their bikes?",
        "Stephanie's bike costs $356 * 2 = $712.\nSo, their bikes cost $356 + $712 = $1068 in total.\n"
        "The answer is 1068.",
    ),
)


_SOURCE_SIZES = {"test": 1319, "train": 7473}


class GSM8K(Task):
    name = "gsm8k"
    stop = ("\nQuestion:", "\nUser:", "</s>", "<|im_end|>")
    max_new_tokens = 256
    split_seed = GSM8K_SPLIT_SEED
    split_strategy = "sha256-rank over GSM8K test: first 100 dev, rest test; train whole"
    split_sizes = MappingProxyType(
        {"dev": GSM8K_DEV_SIZE, "test": _SOURCE_SIZES["test"] - GSM8K_DEV_SIZE, "train": _SOURCE_SIZES["train"]}
    )

    def examples(self, split: str, data_dir: DataDir = None, limit: int | None = None) -> list[Example]:
        self._check_split(split, limit)
        source = "train" if split == "train" else "test"
        rows = load_gsm8k(source, data_dir)
        expected = _SOURCE_SIZES[source]
        if len(rows) != expected:
            # A truncated or different copy would silently change the fixed split.
            raise DataError(f"GSM8K {source} has {len(rows)} rows, expected {expected}")
        by_id = {f"gsm8k/{source}/{i}": row for i, row in enumerate(rows)}
        if split == "train":
            chosen = ranked(by_id, self.split_seed)
        else:
            chosen = dev_test_split(list(by_id), self.split_seed, GSM8K_DEV_SIZE)[split]
        chosen = chosen[:limit] if limit is not None else chosen
        return [self._example(ex_id, by_id[ex_id], split) for ex_id in chosen]

    def fewshot(self) -> list[tuple[str, str]]:
        return [(question, solution) for _, question, solution in FEWSHOT]

    def read_answer(self, text: str, *, truncated: bool) -> str | None:
        return extract_number(text, truncated=truncated)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return numbers_equal(predicted, gold)

    @staticmethod
    def _example(ex_id: str, row: dict, split: str) -> Example:
        rationale, sep, answer = row["answer"].rpartition("####")
        gold = normalize_number(answer) if sep else None
        if gold is None:
            raise DataError(f"{ex_id}: answer has no '#### <number>' line")
        return Example(
            id=ex_id,
            question=row["question"],
            gold=gold,
            meta={"split": split, "rationale": rationale.strip()},
        )
