"""The cached-prefix, row-dropping decoder must produce exactly what plain `generate` produces."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from evals.backends.base import SamplingParams, render_prompt, truncate_at_stop
from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig, common_prefix_length

SHOTS = [
    {"role": "user", "content": "What is the result of 3+4*5? Natalia sold clips to 48 of her friends."},
    {"role": "assistant", "content": "3+4*5 = 23. The answer is 23."},
    {"role": "user", "content": "Weng earns $12 an hour for babysitting. How much did she earn?"},
    {"role": "assistant", "content": "She earned $10. The answer is 10."},
]
QUESTIONS = ["What is 1+2?", "Natalia sold 48 clips in April and half as many in May. How many in all?", "7*8?"]


def reference_generate(model, tokenizer, prompt: str, max_new_tokens: int) -> list[int]:
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return out[0, ids.shape[1] :].tolist()


def test_greedy_matches_plain_generate(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    # Force long completions: a random tiny model rarely emits EOS, so this exercises the length path.
    backend = TransformersBackend.from_model(model, tokenizer, TransformersBackendConfig(batch_size=2, min_shared_prefix=4))
    prompts = [SHOTS + [{"role": "user", "content": q}] for q in QUESTIONS]
    completions = backend.generate(prompts, SamplingParams(max_new_tokens=12))
    assert backend._prefix is not None and len(backend._prefix[0]) >= 4, "the shared few-shot prefix was not cached"
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir)  # stock attention, not the backend's
    assert reference.config._attn_implementation != model.config._attn_implementation
    for prompt, completion in zip(prompts, completions):
        expected = reference_generate(reference, tokenizer, render_prompt(tokenizer, prompt), 12)
        eos = set(backend.eos_ids)
        expected = expected[: next((i for i, t in enumerate(expected) if t in eos), len(expected))]
        assert completion.text == tokenizer.decode(expected, skip_special_tokens=True)
        assert completion.num_tokens == len(expected)


def test_stop_strings_cut_the_completion(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(model, tokenizer)
    full = backend.generate(["The answer is"], SamplingParams(max_new_tokens=16))[0]
    assert full.text, "the tiny model produced nothing to cut"
    stop = full.text[len(full.text) // 2 : len(full.text) // 2 + 2]
    cut = backend.generate(["The answer is"], SamplingParams(max_new_tokens=16, stop=(stop,)))[0]
    assert cut.finish_reason == "stop"
    assert cut.text == truncate_at_stop(full.text, (stop,))[0]


def test_sampling_is_seeded(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(model, tokenizer)
    params = SamplingParams(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=7)
    a = backend.generate(["def merge(", "def merge("], params)
    b = backend.generate(["def merge(", "def merge("], params)
    assert [c.text for c in a] == [c.text for c in b]


def test_identical_prompts_sample_different_texts(tiny_model_dir):
    # The debate's agents all get the same round-0 prompt: each row must draw its own tokens.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(model, tokenizer, TransformersBackendConfig(batch_size=2))
    texts = [c.text for c in backend.generate(["def merge("] * 3, SamplingParams(max_new_tokens=12, temperature=1.0))]
    assert len(set(texts)) == 3, texts


def test_update_weights_changes_outputs_and_drops_prefix_cache(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    backend = TransformersBackend.from_model(model, tokenizer, TransformersBackendConfig(min_shared_prefix=4))
    prompts = [SHOTS + [{"role": "user", "content": q}] for q in QUESTIONS]
    before = [c.text for c in backend.generate(prompts, SamplingParams(max_new_tokens=8))]
    name = "model.layers.0.mlp.down_proj.weight"
    weight = dict(model.named_parameters())[name]
    backend.update_weights({name: weight.detach() + 0.5 * torch.randn_like(weight)})
    assert backend._prefix is None
    after = [c.text for c in backend.generate(prompts, SamplingParams(max_new_tokens=8))]
    assert before != after


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5], [6]]) == 0


def test_a_chat_ending_with_an_assistant_message_is_continued(tiny_model_dir):
    """A reply started for the model (GeneratorConfig.reply_start): the completion continues that text."""
    from selfdev.config import GeneratorConfig
    from selfdev.generator.sampler import generate

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    chat = [{"role": "user", "content": "Write merge."}]
    start = "```python\nimport torch\n"
    started = render_prompt(tokenizer, [*chat, {"role": "assistant", "content": start}])
    assert started.endswith(start) and started.startswith(render_prompt(tokenizer, chat))
    backend = TransformersBackend.from_model(model, tokenizer)
    config = GeneratorConfig(max_new_tokens=16, reply_start=start)
    (reply, tokens), = generate(backend, [chat], config, temperature=0.0, seed=0)
    expected = reference_generate(model, tokenizer, started, 16)
    eos = set(backend.eos_ids)
    expected = expected[: next((i for i, t in enumerate(expected) if t in eos), len(expected))]
    assert reply == start + tokenizer.decode(expected, skip_special_tokens=True) and tokens == len(expected)


def test_prompts_that_share_a_longer_prefix_are_decoded_as_groups_and_match_plain_generate(tiny_model_dir):
    """Evolve prompts show the same parents to a run of samples: each such run is one group with its own cached prefix."""
    from evals.backends.transformers_backend import GROUP_PREFIX_TOKENS, prefix_groups

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    parents = [" ".join(f"{word}{i}" for i in range(GROUP_PREFIX_TOKENS)) for word in ("alpha", "omega")]
    prompts = [f"Task. {p} Ask {q}." for p in parents for q in ("one", "two")] + ["Task. unrelated"]
    encoded = [tokenizer(p)["input_ids"] for p in prompts]
    assert sorted(map(sorted, prefix_groups(encoded, 2, batch_size=2))) == [[0, 1], [2, 3], [4]]
    # Groups smaller than a batch would decode in more, smaller batches: they stay with the rest.
    assert prefix_groups(encoded, 2, batch_size=3) == [[0, 1, 2, 3, 4]]
    assert prefix_groups(encoded[:1] * 3, len(encoded[0]) - 1, 2) == [[0, 1, 2]]  # identical prompts: one group
    backend = TransformersBackend.from_model(model, tokenizer, TransformersBackendConfig(batch_size=2, min_shared_prefix=4))
    completions = backend.generate(prompts, SamplingParams(max_new_tokens=6))
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    eos = set(backend.eos_ids)
    for prompt, completion in zip(prompts, completions):
        expected = reference_generate(reference, tokenizer, prompt, 6)
        expected = expected[: next((i for i, t in enumerate(expected) if t in eos), len(expected))]
        assert completion.text == tokenizer.decode(expected, skip_special_tokens=True)


def test_a_group_keeps_whole_batches_and_its_remainder_joins_the_rest():
    from evals.backends.transformers_backend import GROUP_PREFIX_TOKENS, prefix_groups

    a, b = [1] * (GROUP_PREFIX_TOKENS + 2), [2] * (GROUP_PREFIX_TOKENS + 2)
    encoded = [a + [i] for i in range(5)] + [b + [9]]
    assert prefix_groups(encoded, 0, batch_size=2) == [[0, 1, 2, 3], [4, 5]]
