"""A ban on copying the code a prompt shows: no reply repeats `n` tokens in a row of an algorithm shown to it.

Why: of evolve's replies that ran, about 6 in 10 were a verbatim copy of a parent the prompt showed
(bench_generator run 10, the 0.5B seed at T 0.6, told "Do not copy an algorithm above"), and asked again with
the note that its reply repeats one (`generator.revise_repeats`) it wrote the same code again (0 of 17 new). A
copy scores what its parent scored, so it is a sample spent on nothing. Forbidding the next token of any
`n`-token run of a shown algorithm forces the reply off the parent's text within `n` tokens, while it may still
keep shorter idioms (`torch.stack(task_vectors)`) and the parent's ideas.

The ban is applied while decoding (evals.backends.transformers_backend's `constraints`), like transformers'
`NoRepeatNGramLogitsProcessor`, but against the prompt's code rather than the reply's own text, and per prompt
(every evolve prompt shows its own parents). Runs of what every reply must write (the signature of `merge`) and of
the rules' own advice are exempt.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from selfdev.generator.prompt import PITFALLS, SIGNATURE
from selfdev.generator.proposals import shown_code

Ngrams = dict[tuple[int, ...], frozenset[int]]  # the n-1 tokens before -> the tokens that may not follow them


def ngrams(tokens: Sequence[int], n: int) -> set[tuple[int, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def banned_ngrams(codes: Sequence[str], n: int, encode: Callable[[str], list[int]]) -> Ngrams:
    """Every `n`-token run of `codes` (tokenized by `encode`) that the rules do not contain and that does not reach
    into the signature: a run from the signature into the body would ban the first indent every reply writes."""
    exempt = ngrams(encode(PITFALLS), n)
    table: dict[tuple[int, ...], set[int]] = {}
    for code in codes:
        for piece in code.split(SIGNATURE):
            for gram in ngrams(encode(piece), n) - exempt:
                table.setdefault(gram[:-1], set()).add(gram[-1])
    return {head: frozenset(tails) for head, tails in table.items()}


class CopyBan:
    """A reply's constraint (`RowLogits`): the next token that would complete a banned run loses `penalty` from its
    logit (inf: it is never sampled)."""

    def __init__(self, table: Ngrams, n: int, penalty: float = float("inf")) -> None:
        self.table, self.n, self.penalty = table, n, penalty

    def __call__(self, generated: list[int], logits: torch.Tensor) -> None:
        if len(generated) >= self.n - 1:
            tails = self.table.get(tuple(generated[len(generated) - self.n + 1 :]))
            if tails:
                logits[list(tails)] -= self.penalty


def copy_bans(
    chats: Sequence[list[dict[str, str]]], n: int, encode: Callable[[str], list[int]], penalty: float = float("inf")
) -> list[CopyBan | None]:
    """One ban per chat on the code its last message shows (None: it shows none); chats that show the same code (an
    evolve run's shared parents, the paper prompt's example) share one table."""
    tables: dict[tuple[str, ...], CopyBan | None] = {}
    bans = []
    for chat in chats:
        codes = tuple(shown_code(chat[-1]["content"]))
        if codes not in tables:
            tables[codes] = CopyBan(banned_ngrams(codes, n, encode), n, penalty) if codes else None
        bans.append(tables[codes])
    return bans
