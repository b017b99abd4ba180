"""A ban on copying the code a prompt shows: no reply repeats `n` tokens in a row of an algorithm shown to it (with
`tail`, of the algorithm's last lines).

Why: of evolve's replies that ran, about 6 in 10 were a verbatim copy of a parent the prompt showed
(bench_generator run 10, the 0.5B seed at T 0.6, told "Do not copy an algorithm above"), and asked again with
the note that its reply repeats one (`generator.revise_repeats`) it wrote the same code again (0 of 17 new). A
copy scores what its parent scored, so it is a sample spent on nothing. Lowering (or forbidding) the logit of the
token that would complete an `n`-token run of a shown algorithm pushes the reply off the parent's text where it
has another likely token, while it may still keep shorter idioms (`torch.stack(task_vectors)`) and the parent's
ideas. It works on token ids: the same text spelt in other tokens (` tor` + `ch` for ` torch`) is not caught, so
what it achieves is measured by the copies that still run (bench_generator's +ban arms).

The ban is applied while decoding (evals.backends.transformers_backend's `constraints`), like transformers'
`NoRepeatNGramLogitsProcessor`, but against the prompt's code rather than the reply's own text, and per prompt
(every evolve prompt shows its own parents). Exempt: the header every reply writes (imports and the `def merge`
line), and runs that the rules themselves show (only short runs: no rule's idiom is 16 tokens long).

A ban on every run of a parent breaks code: the reply is pushed off the parent mid-body, renames a variable it
uses later, and fails (bench_generator run 11: 83% ran without the ban, 56-60% with it). With `tail` only the runs
that end in a parent's last lines are banned: the reply may keep a parent's setup, which runs, but cannot end as
it does, so a copy turns into a variant of its parent (session 15 pilots, the same draw as run 11, 48 evolve
replies at T 0.4, N 16, last line only: penalty 3 ran 85% with 17 distinct functions, against 83% and 13 without
a ban and 56% and 16 with the whole-code ban; a hard ban ran 56% with 25 distinct). On a fresh draw (bench_generator
run 12) the gain did not replicate: 83% ran with and without it, 15 distinct against 14; so it is off by default.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import torch

from selfdev.generator.prompt import PITFALLS
from selfdev.generator.proposals import shown_code

BanTable = dict[tuple[int, ...], frozenset[int]]  # the n-1 tokens before -> the tokens that may not follow them
Encode = Callable[[str], list[int]]

# The imports and blank lines before `def merge(...)` and that line itself: every reply writes one, whatever the
# parent's spelling (`List[...]`, an extra import, two blank lines), and a run from it into the body would ban the
# reply's first indent.
HEADER = re.compile(r"(?m)^(?:(?:import|from)\s.*\n|[ \t]*\n)*def merge\(.*\n")


def ngrams(tokens: Sequence[int], n: int) -> set[tuple[int, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def banned_ngrams(
    codes: Sequence[str], n: int, encode: Encode, exempt: set[tuple[int, ...]] | None = None, tail: int = 0
) -> BanTable:
    """Every `n`-token run of `codes` (tokenized by `encode`) outside their headers, except those the rules contain
    (`exempt`: computed from them when not given); with `tail`, only the runs that end in a code's last `tail` lines
    that are not blank (where the prefix before them, tokenized alone, ends: BPE may merge a token across that edge)."""
    if exempt is None:
        exempt = ngrams(encode(PITFALLS), n)
    table: dict[tuple[int, ...], set[int]] = {}
    for code in codes:
        pieces = HEADER.split(code)
        if tail:  # the last piece ends the code (the body of merge, with whatever follows it)
            pieces = pieces[-1:]
        for piece in pieces:
            tokens = encode(piece)
            first = max(n - 1, len(encode(before_tail(piece, tail)))) if tail else n - 1
            for end in range(first, len(tokens)):
                gram = tuple(tokens[end - n + 1 : end + 1])
                if gram not in exempt:
                    table.setdefault(gram[:-1], set()).add(gram[-1])
    return {head: frozenset(tails) for head, tails in table.items()}


def before_tail(code: str, tail: int) -> str:
    """`code` up to its last `tail` lines that are not blank ("" when it has no more than that)."""
    lines = code.split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return "\n".join(lines[: filled[-tail]]) + "\n" if len(filled) > tail else ""


class CopyBan:
    """A reply's constraint (`LogitsConstraint`): the next token that would complete a banned run loses `penalty`
    from its logit (inf: it is never sampled; the sampler then divides by the temperature, so a finite penalty
    costs penalty / T in log-probability)."""

    def __init__(self, table: BanTable, n: int, penalty: float = float("inf")) -> None:
        self.table, self.n, self.penalty = table, n, penalty

    def __call__(self, generated: list[int], logits: torch.Tensor) -> None:
        if len(generated) >= self.n - 1:
            tails = self.table.get(tuple(generated[len(generated) - self.n + 1 :]))
            if tails:
                logits[list(tails)] -= self.penalty


def copy_bans(
    chats: Sequence[list[dict[str, str]]], n: int, encode: Encode, penalty: float = float("inf"), tail: int = 0
) -> list[CopyBan | None]:
    """One ban per chat on the code its user messages show (None: they show none; `tail`: on the ends of that code
    alone, as `banned_ngrams`); chats that show the same code (an evolve run's shared parents, the paper prompt's
    example) share one table."""
    exempt = ngrams(encode(PITFALLS), n)
    tables: dict[tuple[str, ...], CopyBan | None] = {}
    bans = []
    for chat in chats:
        codes = tuple(code for m in chat if m["role"] == "user" for code in shown_code(m["content"]))
        if codes not in tables:
            tables[codes] = CopyBan(banned_ngrams(codes, n, encode, exempt, tail), n, penalty) if codes else None
        bans.append(tables[codes])
    return bans
