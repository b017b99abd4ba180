"""The ban on copying the code a prompt shows (generator.copy_ban): which runs are banned, and that the decoder obeys."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from evals.backends.base import SamplingParams
from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
from selfdev.config import GeneratorConfig
from selfdev.generator.copying import CopyBan, banned_ngrams, copy_bans, ngrams
from selfdev.generator.prompt import SIGNATURE, generator_messages, messages


def chars(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_runs_of_a_shown_algorithm_are_banned_but_not_the_signature_or_the_rules_idioms():
    body = "    stacked = torch.stack(task_vectors)\n    return stacked.median(dim=0).values\n"
    table = banned_ngrams([SIGNATURE + body], 6, chars)
    banned = {head + (tail,) for head, tails in table.items() for tail in tails}
    assert tuple(chars("median")) in banned and tuple(chars("d.medi")) in banned
    assert not banned & ngrams(chars(SIGNATURE), 6), "the signature every reply writes is banned"
    into_body = chars((SIGNATURE + body)[len(SIGNATURE) - 3 : len(SIGNATURE) + 3])
    assert tuple(into_body) not in banned, "a run from the signature into the body bans the first indent"
    assert not banned & ngrams(chars("stacked = torch.stack(task_vectors)"), 6), "an idiom the rules teach is banned"


def test_the_header_of_any_spelling_is_exempt_and_the_body_is_banned():
    header = "import math\nimport torch\n\n\ndef merge(task_vectors: List[torch.Tensor]) -> torch.Tensor:\n"
    body = "    return torch.stack(task_vectors).median(dim=0).values * math.pi\n"
    table = banned_ngrams([header + body], 6, chars, exempt=set())
    banned = {head + (tail,) for head, tails in table.items() for tail in tails}
    assert banned == ngrams(chars(body), 6), "a run through the header is banned, or a run of the body is not"


def test_a_tail_ban_bans_only_the_runs_that_end_in_the_last_lines():
    body = "    stacked = torch.stack(task_vectors)\n    w = stacked.norm(dim=1)\n\n    return (w[:, None] * stacked).sum(0)\n"
    last = "    return (w[:, None] * stacked).sum(0)\n"
    table = banned_ngrams([SIGNATURE + body], 6, chars, exempt=set(), tail=1)
    banned = {head + (tail,) for head, tails in table.items() for tail in tails}
    start = len(body) - len(last)  # the runs that end in the last line (not blank), and only those
    assert banned == {tuple(chars(body[end - 6 : end])) for end in range(start + 1, len(body) + 1)}
    two = banned_ngrams([SIGNATURE + body], 6, chars, exempt=set(), tail=2)  # the blank line does not count
    assert len(two) > len(table) and tuple(chars("norm(d")[:-1]) in two and tuple(chars("torch")[:-1]) not in two
    # Only the end of the code: a helper defined before the header is never banned.
    helper = "def helper(x):\n    return x.abs().sqrt() * 2.0\n\n\n"
    with_helper = banned_ngrams([helper + SIGNATURE + body], 6, chars, exempt=set(), tail=1)
    assert with_helper == table
    # A code no longer than its tail is banned whole; the header stays exempt.
    assert banned_ngrams([SIGNATURE + last], 6, chars, exempt=set(), tail=3) == banned_ngrams([SIGNATURE + last], 6, chars, exempt=set())


def test_the_ban_forbids_only_the_token_that_completes_a_run():
    ban = CopyBan({(1, 2): frozenset({3, 4})}, 3)
    logits = torch.zeros(6)
    ban([9, 1, 2], logits)
    assert logits.tolist() == [0, 0, 0, float("-inf"), float("-inf"), 0]
    logits = torch.zeros(6)
    ban([1, 2, 9], logits)
    ban([2], logits)  # shorter than a run's head: nothing to match yet
    assert logits.tolist() == [0.0] * 6


def test_chats_showing_the_same_code_share_one_ban_and_a_chat_without_code_has_none():
    paper = generator_messages(3)  # shows the one-shot example
    plain = messages("Write a merge function.")
    bans = copy_bans([paper, plain, paper], 8, chars)
    assert bans[0] is bans[2] and bans[0] is not None and bans[1] is None
    assert "scale" in "".join(chr(t) for head in bans[0].table for t in head)


def test_the_decoder_never_completes_a_banned_run_and_the_sampler_bans_what_the_prompt_shows(tiny_model_dir):
    from selfdev.generator.sampler import generate

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer)
    chat = messages("Write merge.")
    free = backend.generate([chat], SamplingParams(max_new_tokens=12))[0]
    ids = tokenizer(free.text, add_special_tokens=False).input_ids
    assert len(ids) >= 4, "the tiny model wrote too little to ban"
    # The decoder: a ban on the free reply's 4th token after its first three changes that token and none before.
    head = tuple(ids[:3])
    banned = backend.generate([chat], SamplingParams(max_new_tokens=12), constraints=[CopyBan({head: frozenset({ids[3]})}, 4)])[0]
    again = tokenizer(banned.text, add_special_tokens=False).input_ids
    assert again[:3] == ids[:3] and again[3] != ids[3]
    # The sampler hands the decoder a ban on the code the prompt shows (the tiny random model's own replies are no
    # test of what it does: they spell text in tokens its tokenizer would not, which a ban on token runs misses).
    shown = messages(f"Write merge.\n```python\n{free.text}\n```")
    config = GeneratorConfig(max_new_tokens=16)
    handed, real = [], backend.generate
    backend.generate = lambda *a, constraints=None, **k: handed.append(constraints) or real(*a, constraints=constraints, **k)
    generate(backend, [shown], config.model_copy(update={"copy_ban": 4}), temperature=0.0, seed=0)
    encode = lambda t: tokenizer(t, add_special_tokens=False).input_ids  # noqa: E731
    (ban,), = handed
    assert ban.n == 4 and ban.table == banned_ngrams([free.text + "\n"], 4, encode) and ban.penalty == float("inf")
    assert ban.table, "the shown code had no run to ban"
    # With copy_ban_tail, the ban the sampler hands over covers only the runs that end in the last line.
    code = f"{free.text}\nx = 1\n"
    tail = config.model_copy(update={"copy_ban": 4, "copy_ban_tail": 1})
    generate(backend, [messages(f"Write merge.\n```python\n{code}```")], tail, temperature=0.0, seed=0)
    (ends,), whole = handed[-1], banned_ngrams([code], 4, encode)
    assert ends.table == banned_ngrams([code], 4, encode, tail=1) and len(ends.table) < len(whole)


def test_each_prompt_gets_its_own_constraint_across_batches_and_rows_that_leave_early(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), tokenizer, TransformersBackendConfig(batch_size=3)
    )
    eos = backend.eos_ids[0]

    def forcing(letter: str, stop_after: int | None = None):
        token = tokenizer.convert_tokens_to_ids(letter)

        def constraint(generated: list[int], logits: torch.Tensor) -> None:
            logits.fill_(float("-inf"))
            logits[eos if stop_after is not None and len(generated) == stop_after else token] = 0.0

        return constraint

    prompts = ["What is 1+2?", "Natalia sold 48 clips in April and half as many in May. How many?", "7*8?", "Weng earns $12."]
    constraints = [forcing("a", stop_after=2), None, forcing("b"), forcing("c")]
    out = backend.generate(prompts, SamplingParams(max_new_tokens=8), constraints=constraints)
    assert (out[0].text, out[0].finish_reason) == ("aa", "stop")  # left its batch after two tokens
    assert (out[2].text, out[3].text) == ("b" * 8, "c" * 8)
    with pytest.raises(ValueError, match="4 prompts need 4 constraints"):
        backend.generate(prompts, SamplingParams(max_new_tokens=8), constraints=constraints[:3])


def test_a_finite_penalty_lowers_the_logit_and_an_infinite_one_bans():
    logits = torch.zeros(4)
    CopyBan({(7,): frozenset({2})}, 2, 3.0)([7], logits)
    assert logits.tolist() == [0.0, 0.0, -3.0, 0.0]


def test_a_ban_of_one_token_is_a_config_error():
    with pytest.raises(ValidationError, match="copy_ban 1"):
        GeneratorConfig(copy_ban=1)
    assert GeneratorConfig(copy_ban=0).copy_ban == 0 and GeneratorConfig(copy_ban=16).copy_ban == 16
