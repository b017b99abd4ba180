"""Sample merge-function replies from the generator (base model plus the latest DPO adapter).

Each sample (`selfdev.stages.Sample`) keeps the prompt it was drawn from, how that prompt was made
(`proposal`: paper, evolve, repair), which arm drew it (`main`, or `control`:
the generator without DPO) and, for a repair, the candidate it repairs.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

from evals.atomic import read_jsonl, write_jsonl_atomic
from evals.backends.base import Completion, SamplingParams
from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
from selfdev.config import GeneratorConfig
from selfdev.dpo import load_generator
from selfdev.generator.copying import copy_bans
from selfdev.generator.prompt import CODE_START
from selfdev.generator.reply import CODE_END
from selfdev.stages import Sample

Chat = list[dict[str, str]]

# A plan (GeneratorConfig.plan_temperature) is one sentence: its stage stops at the line's end, an opening fence or
# this many tokens, whichever comes first.
PLAN_TOKENS = 64
PLAN_STOPS = ("\n", "```")


@contextlib.contextmanager
def generator_backend(model_path: str, adapter: Path | None, config: GeneratorConfig) -> Iterator[TransformersBackend]:
    """The generator loaded once (base plus adapter) for any number of `generate` calls; freed on exit."""
    from transformers import AutoTokenizer

    model = load_generator(model_path, adapter)
    backend = TransformersBackend.from_model(
        model, AutoTokenizer.from_pretrained(model_path),
        TransformersBackendConfig(batch_size=config.batch_size, dtype=config.dtype),
    )
    try:
        yield backend
    finally:
        del backend, model
        gc.collect()


def generate(
    backend: TransformersBackend,
    prompts: list[Chat],
    config: GeneratorConfig,
    *,
    temperature: float,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, int]]:
    """One reply per prompt, with the number of tokens it took (`config.reply_start` is part of the reply, and
    not of the count: the generator continues from it). With `config.plan_temperature`, each reply is a plan drawn
    at that temperature, then the code at `temperature`, continued from the plan and the opening of a code block."""
    params = SamplingParams(
        max_new_tokens=config.max_new_tokens, temperature=temperature, top_p=config.top_p, seed=seed, stop=(CODE_END,)
    )
    bans = None
    if config.copy_ban:
        encode = lambda text: backend.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
        bans = copy_bans(prompts, config.copy_ban, encode, config.copy_penalty, config.copy_ban_tail)
    starts, planned = [config.reply_start] * len(prompts), [0] * len(prompts)
    if config.plan_temperature is not None:
        starts, planned = plans(backend, prompts, config, seed)
    if any(starts):
        prompts = [[*chat, {"role": "assistant", "content": start}] for chat, start in zip(prompts, starts)]
    completions = backend.generate(prompts, params, progress=progress, **({"constraints": bans} if bans else {}))
    return [(reply_of(start, c), c.num_tokens + extra) for start, c, extra in zip(starts, completions, planned)]


def plans(backend: TransformersBackend, prompts: list[Chat], config: GeneratorConfig, seed: int) -> tuple[list[str], list[int]]:
    """Each prompt's reply start after a plan: the plan's sentence (sampled at `config.plan_temperature`), a blank
    line and the opening of the code block (`config.reply_start`, else CODE_START); and the plan's token count."""
    params = SamplingParams(
        max_new_tokens=PLAN_TOKENS, temperature=config.plan_temperature, top_p=config.top_p, seed=seed, stop=PLAN_STOPS
    )
    opening = config.reply_start or CODE_START
    written = backend.generate(prompts, params)
    return [f"{p.text.strip()}\n\n{opening}" if p.text.strip() else opening for p in written], [p.num_tokens for p in written]


def reply_of(start: str, completion: Completion) -> str:
    """The reply with its code block closed when generation stopped in it (at CODE_END, which the backend leaves
    out, or at the end of sequence), so the reply DPO learns from closes its block as the prompt asks; a reply cut at
    the token limit stays cut."""
    reply = start + completion.text
    return reply + CODE_END.rstrip() if completion.finish_reason == "stop" and reply.count("```") % 2 else reply


def sample_replies(
    model_path: str, adapter: Path | None, prompts: list[Chat], config: GeneratorConfig, **sampling
) -> list[tuple[str, int]]:
    """`generate` (temperature, seed, progress) with a generator loaded for this call alone."""
    with generator_backend(model_path, adapter, config) as backend:
        return generate(backend, prompts, config, **sampling)


def read_samples(path: Path) -> list[Sample] | None:
    if not path.is_file():
        return None
    return [Sample(**{k: v for k, v in row.items() if k != "index"}) for row in read_jsonl(path)]


def write_samples(path: Path, samples: list[Sample | str]) -> None:
    """Atomically, so a resumed run evaluates exactly the replies it sampled before the crash."""
    rows = [asdict(s if isinstance(s, Sample) else Sample(s)) for s in samples]
    write_jsonl_atomic(path, [{"index": i, **r} for i, r in enumerate(rows)])
