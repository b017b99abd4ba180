"""vLLM requests without vLLM: every prompt of a call gets its own sampling seed (issue 17: agents were clones)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

from evals.backends.base import SamplingParams, prompt_seed
from evals.backends.vllm_backend import VLLMBackend, sampling_kwargs

DEBATE = SamplingParams(max_new_tokens=64, temperature=1.0, top_p=0.9, seed=11)


def test_each_prompt_gets_its_own_seed():
    requests = sampling_kwargs(DEBATE, 3)
    assert len({r["seed"] for r in requests}) == 3
    assert sampling_kwargs(DEBATE, 3) == requests  # reproducible for the call's seed
    assert {r["seed"] for r in sampling_kwargs(SamplingParams(seed=12), 3)}.isdisjoint(r["seed"] for r in requests)
    for r in requests:
        assert (r["max_tokens"], r["temperature"], r["top_p"], r["stop"]) == (64, 1.0, 0.9, None)
    assert sampling_kwargs(SamplingParams(temperature=0.0, top_p=0.5, stop=("\nQ",)), 1)[0]["top_p"] == 1.0


def test_prompt_seeds_do_not_collide_across_rounds():
    # The debate's round seeds are seed + 7919 * round; no prompt of one round replays one of another.
    seeds = [prompt_seed(s, i) for s in (0, 7919, 15838) for i in range(300)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)


def test_generate_sends_one_request_per_prompt(monkeypatch, tiny_tokenizer):
    @dataclass
    class FakeSamplingParams:  # stands in for vllm.SamplingParams, which rejects unknown arguments too
        max_tokens: int
        temperature: float
        top_p: float
        stop: list | None
        seed: int

    sent = {}

    class FakeLLM:
        def generate(self, texts, sampling, lora_request=None, use_tqdm=True):
            sent.update(texts=texts, sampling=sampling)
            out = types.SimpleNamespace(text="ok", token_ids=[1], finish_reason="length")
            return [types.SimpleNamespace(outputs=[out]) for _ in texts]

    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = FakeSamplingParams
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = object
    for name, module in (("vllm", vllm), ("vllm.lora", types.ModuleType("vllm.lora")), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    backend = VLLMBackend.__new__(VLLMBackend)
    backend.llm, backend.tokenizer, backend._adapter = FakeLLM(), tiny_tokenizer, None

    prompt = [{"role": "user", "content": "What is 3+4*5?"}]
    completions = backend.generate([prompt] * 3, DEBATE)
    assert len(set(sent["texts"])) == 1 and len(sent["sampling"]) == 3
    assert len({p.seed for p in sent["sampling"]}) == 3
    assert [c.truncated for c in completions] == [True] * 3
