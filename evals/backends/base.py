"""The generation interface every backend implements (transformers on CPU, vLLM on GPU)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, Union

import torch

Message = dict[str, str]
Prompt = Union[str, list[Message]]


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    num_tokens: int
    finish_reason: str  # "stop" (eos or a stop string) or "length"

    @property
    def truncated(self) -> bool:
        """Cut off at the token limit: its text may end before the final answer was written."""
        return self.finish_reason == "length"


class GenerationBackend(Protocol):
    name: str

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """One completion per prompt, in order; `progress(n)` reports n newly finished prompts."""
        ...

    def update_weights(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Overwrite the named parameters of the loaded model in place (a merge candidate's weights)."""
        ...


def prompt_seed(seed: int, index: int) -> int:
    """The sampling seed of prompt `index` in a call with seed `seed`: distinct per prompt, reproducible per call.

    Identical prompts in one call (the debate's agents all get the same round-0
    prompt) must not replay one random stream, or every agent writes the same text.
    """
    digest = hashlib.sha256(f"{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: a valid seed for torch and vLLM


def render_prompt(tokenizer: Any, prompt: Prompt) -> str:
    """Chat messages go through the tokenizer's chat template when it has one, else a plain transcript.

    A chat that ends with an assistant message is continued: the completion carries on from its text
    (a reply started for the model, e.g. the first lines of the code it is asked for).
    """
    if isinstance(prompt, str):
        return prompt
    started = bool(prompt) and prompt[-1]["role"] == "assistant"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=not started, continue_final_message=started
        )
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in prompt]
    return "\n\n".join(lines) if started else "\n\n".join(lines) + "\n\nAssistant:"


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; the stop string itself is not part of the completion."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
