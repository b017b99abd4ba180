"""vLLM generation (GPU): batched sampling and greedy evaluation, LoRA adapters, in-place weight swaps.

Needs `pip install .[gpu]` and a CUDA GPU; without either it raises `BackendUnavailable`
naming what to install or which backend to use instead. The engine core runs in this
process (VLLM_ENABLE_V1_MULTIPROCESSING=0) so merged weights can be loaded into the
live model without a disk round trip, as trl's colocated mode does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch

from evals.backends.base import Completion, Prompt, SamplingParams, prompt_seed, render_prompt
from evals.backends.dtype import resolve_dtype
from evals.errors import BackendUnavailable


@dataclass(frozen=True)
class VLLMBackendConfig:
    dtype: str = "auto"  # auto: bfloat16 where the GPU supports it, else float16
    gpu_memory_utilization: float = 0.85
    max_model_len: int = 4096
    tensor_parallel_size: int = 1
    enable_lora: bool = False
    max_lora_rank: int = 256
    seed: int = 0


def require_vllm():
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            "the vllm backend needs vLLM: `pip install '.[gpu]'`; on a CPU machine use backend 'transformers'"
        ) from None
    if not torch.cuda.is_available():
        raise BackendUnavailable("the vllm backend needs a CUDA GPU and none is visible; use backend 'transformers'")
    return vllm


def sampling_kwargs(params: SamplingParams, count: int) -> list[dict]:
    """vLLM `SamplingParams` arguments for each of `count` prompts: the same settings, each prompt its own seed."""
    return [
        {
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p if params.temperature > 0 else 1.0,
            "stop": list(params.stop) or None,
            "seed": prompt_seed(params.seed, index),
        }
        for index in range(count)
    ]


class VLLMBackend:
    name = "vllm"

    def __init__(self, model: str, config: VLLMBackendConfig | None = None) -> None:
        vllm = require_vllm()
        self.config = config or VLLMBackendConfig()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.llm = vllm.LLM(
            model=model,
            # vLLM has no split-precision weights: merged models that need the precision get float32.
            dtype={"bfloat16x2": "float32"}.get(dtype := resolve_dtype(self.config.dtype, "cuda"), dtype),
            gpu_memory_utilization=self.config.gpu_memory_utilization,
            max_model_len=self.config.max_model_len,
            tensor_parallel_size=self.config.tensor_parallel_size,
            enable_lora=self.config.enable_lora,
            max_lora_rank=self.config.max_lora_rank,
            enable_prefix_caching=True,  # the few-shot prefix is shared by every prompt
            seed=self.config.seed,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self._adapter: tuple[str, int] | None = None

    def set_adapter(self, adapter: Path | None) -> None:
        """Sample from base + this LoRA adapter (the generator after DPO); None for the base model."""
        self._adapter = None if adapter is None else (str(adapter), abs(hash(str(adapter))) % (1 << 31) + 1)

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        from vllm import SamplingParams as VSamplingParams
        from vllm.lora.request import LoRARequest

        lora = LoRARequest("generator", self._adapter[1], self._adapter[0]) if self._adapter else None
        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        sampling = [VSamplingParams(**kwargs) for kwargs in sampling_kwargs(params, len(texts))]
        outputs = self.llm.generate(texts, sampling, lora_request=lora, use_tqdm=False)
        if progress:
            progress(len(outputs))
        return [
            Completion(text=o.outputs[0].text, num_tokens=len(o.outputs[0].token_ids), finish_reason=o.outputs[0].finish_reason or "stop")
            for o in outputs
        ]

    @torch.no_grad()
    def update_weights(self, tensors: Mapping[str, torch.Tensor]) -> None:
        model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        model.load_weights(weights=((name, t.to("cuda", non_blocking=True)) for name, t in tensors.items()))
        self.llm.reset_prefix_cache()  # cached prefixes were computed with the old weights
