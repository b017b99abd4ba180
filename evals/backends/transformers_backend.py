"""Batched CPU generation on transformers, built for few-shot evaluation.

Plain `model.generate` re-reads the same 5-shot prefix for every problem and keeps
finished rows in the batch until the longest one ends. Here the longest token
prefix shared by all prompts is run through the model once per weight version and
its KV cache is reused for every batch; batches are sorted by length; rows leave
the batch (and the cache) as soon as they hit EOS, a stop string or their budget.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from evals.backends.attention import NAME as GROUPED_ATTENTION
from evals.backends.base import Completion, Prompt, SamplingParams, render_prompt, truncate_at_stop
from evals.backends.dtype import resolve_dtype
from evals.backends.kv_cache import preallocated_cache
from evals.backends.sampling import sample_next_tokens
from evals.backends.split_precision import SplitLinear, split_linears

# Stop strings are searched in the decoded tail only; a stop string is never longer than this many tokens.
STOP_TAIL_TOKENS = 24

# A constraint on one prompt's reply: given the tokens generated so far, edits the next token's logits in place (e.g.
# selfdev.generator.copying's ban on copying the code the prompt shows).
LogitsConstraint = Callable[[list[int], torch.Tensor], None]


@dataclass(frozen=True)
class TransformersBackendConfig:
    """Knobs of the CPU backend."""

    batch_size: int = 64
    # or "bfloat16"; "auto": bfloat16 where this CPU runs it fast (evals.backends.dtype); "bfloat16x2": linear
    # weights as two bf16 terms (near float32 precision, bf16 speed); "precise": bfloat16x2 where bf16 is fast
    dtype: str = "float32"
    min_shared_prefix: int = 16  # shorter shared prefixes are not worth a cached forward
    threads: int | None = None  # torch intra-op threads; None keeps torch's default (all cores)


# Prompts that agree on this many tokens past the prefix all of them share are decoded as a group of their own.
GROUP_PREFIX_TOKENS = 64


def prefix_groups(encoded: Sequence[Sequence[int]], shared: int, batch_size: int) -> list[list[int]]:
    """Indices of `encoded`, grouped so each group's longer common prefix is read once (its own cached forward).

    Prompts that agree on GROUP_PREFIX_TOKENS past the `shared` prefix of all form a group of whole batches (the
    generator's evolve prompts show the same parents to a run of samples, and differ only after them). A group
    decodes in batches of its own, so a part smaller than a batch would cost more decoding steps (each step costs
    about the same for 2 rows as for 12 on a CPU) than its prefix saves: 6 groups of 2 took 3.5x the time of one
    batch of 12. The rest (few-shot questions differ right after the shots) stay one group, decoded as before.
    """
    by_key: dict[tuple[int, ...], list[int]] = {}
    for i, tokens in enumerate(encoded):
        by_key.setdefault(tuple(tokens[: shared + GROUP_PREFIX_TOKENS]), []).append(i)
    if len(by_key) == 1:
        return [list(range(len(encoded)))]  # all agree: the prefix they all share already covers it
    # Whole batches only: a group's remainder would be a small batch of its own, so it joins the rest.
    groups = [g[: len(g) // batch_size * batch_size] for g in by_key.values() if len(g) >= batch_size]
    grouped = {i for g in groups for i in g}
    rest = [i for i in range(len(encoded)) if i not in grouped]
    return groups + [rest] if rest else groups


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for seq in sequences[1:]:
        i = 0
        while i < n and seq[i] == first[i]:
            i += 1
        n = i
    return n


class TransformersBackend:
    name = "transformers"

    def __init__(self, model: str, config: TransformersBackendConfig | None = None) -> None:
        self.config = config or TransformersBackendConfig()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        dtype = resolve_dtype(self.config.dtype, "cpu")  # after set_num_threads: measured as it will run
        self.split: dict[str, tuple[SplitLinear, str]] = {}
        if dtype == "bfloat16x2":
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
            self.split = split_linears(self.model)
        else:
            self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype))
        self.model.set_attn_implementation(GROUPED_ATTENTION)
        self.model.eval()
        self.eos_ids = self._eos_ids()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._prefix: tuple[tuple[int, ...], DynamicCache] | None = None

    @classmethod
    def from_model(cls, model, tokenizer, config: TransformersBackendConfig | None = None) -> "TransformersBackend":
        """Wrap an already-loaded model (tests, and callers that merge into a live model).

        A float32 model is brought to the config's dtype here (bfloat16x2 splits its linear layers in place).
        """
        self = cls.__new__(cls)
        self.config = config or TransformersBackendConfig()
        self.tokenizer, self.model = tokenizer, model.eval()
        self.split = {}
        dtype = resolve_dtype(self.config.dtype, "cpu")
        if model.dtype == torch.float32 and dtype == "bfloat16x2":
            self.split = split_linears(model)
        elif model.dtype == torch.float32 and dtype != "float32":
            model.to(getattr(torch, dtype))
        self.model.set_attn_implementation(GROUPED_ATTENTION)
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self._prefix = None
        return self

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise ValueError("the model has no EOS token; cannot tell when a completion ends")
        return ids

    # -- weights -------------------------------------------------------------------------

    @property
    def weight_dtype(self) -> torch.dtype:
        """The precision weights are held in: what merged weights should be computed in for this model."""
        return torch.float32 if self.split else self.model.dtype

    @torch.no_grad()
    def update_weights(self, tensors: Mapping[str, torch.Tensor]) -> None:
        params = dict(self.model.named_parameters())
        for name, value in tensors.items():
            if name in self.split:
                layer, part = self.split[name]
                layer.assign(part, value)
            elif name in params:
                params[name].copy_(value)
            else:
                raise KeyError(f"model has no parameter {name!r}")
        self._prefix = None  # the cached prefix KV belongs to the old weights

    # -- generation ----------------------------------------------------------------------

    def encode(self, prompt: Prompt) -> list[int]:
        text = render_prompt(self.tokenizer, prompt)
        # A chat template already writes its special tokens; plain text gets the tokenizer's own (e.g. BOS).
        return self.tokenizer(text, add_special_tokens=isinstance(prompt, str)).input_ids

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        progress: Callable[[int], None] | None = None,
        constraints: Sequence[LogitsConstraint | None] | None = None,
    ) -> list[Completion]:
        """`constraints[i]`: what prompt i's reply may not do (None: nothing), applied before every sampled token."""
        if not prompts:
            return []
        if constraints is not None and len(constraints) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts need {len(prompts)} constraints, not {len(constraints)}")
        encoded = [self.encode(p) for p in prompts]
        generator = torch.Generator().manual_seed(params.seed)
        results: list[Completion | None] = [None] * len(encoded)
        bs = self.config.batch_size
        for group in prefix_groups(encoded, self._shared(encoded), bs):
            shared = self._shared([encoded[i] for i in group])
            prefix_cache = self._prefix_cache(tuple(encoded[group[0]][:shared])) if shared else None
            # Longest first: a batch then holds rows of similar length and little padding.
            order = sorted(group, key=lambda i: -len(encoded[i]))
            for start in range(0, len(order), bs):
                rows = order[start : start + bs]
                suffixes = [encoded[i][shared:] for i in rows]
                row_constraints = [constraints[i] for i in rows] if constraints is not None else [None] * len(rows)
                decoded = self._decode_batch(prefix_cache, shared, suffixes, params, generator, progress, row_constraints)
                for i, completion in zip(rows, decoded):
                    results[i] = completion
        return results  # type: ignore[return-value]

    def _shared(self, encoded: list[list[int]]) -> int:
        """Tokens every one of `encoded` starts with, leaving each at least one of its own; 0 when too few to cache."""
        shared = min(common_prefix_length(encoded), min(len(e) for e in encoded) - 1)
        return shared if shared >= self.config.min_shared_prefix else 0

    def _prefix_cache(self, prefix: tuple[int, ...]) -> DynamicCache:
        if self._prefix is None or self._prefix[0] != prefix:
            cache = DynamicCache(config=self.model.config)
            self.model(torch.tensor([prefix]), past_key_values=cache, use_cache=True, logits_to_keep=1)
            self._prefix = (prefix, cache)
        return self._prefix[1]

    def _batch_cache(self, prefix_cache: DynamicCache | None, batch: int, capacity: int) -> DynamicCache:
        cache = preallocated_cache(self.model.config, capacity)
        if prefix_cache is not None:
            # expand() is free; the first update copies the prefix into every row's buffer.
            for idx, layer in enumerate(prefix_cache.layers):
                cache.update(layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1), idx)
        return cache

    def _decode_batch(
        self,
        prefix_cache: DynamicCache | None,
        shared: int,
        suffixes: list[list[int]],
        params: SamplingParams,
        generator: torch.Generator,
        progress: Callable[[int], None] | None,
        constraints: list[LogitsConstraint | None],
    ) -> list[Completion]:
        b, width = len(suffixes), max(len(s) for s in suffixes)
        ids = torch.full((b, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((b, width), dtype=torch.long)
        for r, s in enumerate(suffixes):  # left padding: every row's last token is the newest
            ids[r, width - len(s) :] = torch.tensor(s)
            mask[r, width - len(s) :] = 1
        # Padding sits between the shared prefix and each row's suffix, so positions come from the mask.
        positions = shared + mask.cumsum(1) - 1
        positions = positions.clamp(min=0)
        attention = torch.cat([torch.ones((b, shared), dtype=torch.long), mask], 1)
        cache = self._batch_cache(prefix_cache, b, shared + width + params.max_new_tokens)
        logits = self.model(
            ids, attention_mask=attention, position_ids=positions, past_key_values=cache, use_cache=True, logits_to_keep=1
        ).logits[:, -1]
        live = list(range(b))  # batch row -> original row
        last_pos = positions[:, -1]
        generated: list[list[int]] = [[] for _ in range(b)]
        done: list[Completion | None] = [None] * b
        eos = set(self.eos_ids)
        for step in range(params.max_new_tokens):
            for j, row in enumerate(live):
                if constraints[row] is not None:
                    constraints[row](generated[row], logits[j])
            tokens = sample_next_tokens(logits, params.temperature, params.top_p, generator)
            keep = []
            for j, row in enumerate(live):
                tok = int(tokens[j])
                finished = tok in eos
                if not finished:
                    generated[row].append(tok)
                    if params.stop:
                        tail = self.tokenizer.decode(generated[row][-STOP_TAIL_TOKENS:])
                        finished = any(s in tail for s in params.stop)
                if finished or step == params.max_new_tokens - 1:
                    done[row] = self._completion(generated[row], params, "stop" if finished else "length")
                    if progress:
                        progress(1)
                else:
                    keep.append(j)
            if not keep:
                break
            if len(keep) < len(live):
                index = torch.tensor(keep)
                cache.batch_select_indices(index)
                attention, last_pos, tokens = attention[index], last_pos[index], tokens[index]
                live = [live[j] for j in keep]
            attention = torch.cat([attention, torch.ones((len(live), 1), dtype=torch.long)], 1)
            last_pos = last_pos + 1
            logits = self.model(
                tokens[:, None],
                attention_mask=attention,
                position_ids=last_pos[:, None],
                past_key_values=cache,
                use_cache=True,
            ).logits[:, -1]
        return done  # type: ignore[return-value]

    def _completion(self, tokens: list[int], params: SamplingParams, reason: str) -> Completion:
        text, hit = truncate_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), params.stop)
        return Completion(text=text, num_tokens=len(tokens), finish_reason="stop" if hit else reason)


def default_threads() -> int:
    return len(os.sched_getaffinity(0))
