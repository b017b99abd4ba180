"""Generation for many agents: each request names the model that answers it.

While agents are copies of the seed they all name the same folder, so one
backend call carries every agent's and every problem's prompt (rows sample
independently). Once agents differ, requests are grouped by model and each
model is loaded once per call, one at a time, so memory holds a single model.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch

from evals.backends.base import Completion, GenerationBackend, Prompt, SamplingParams
from evals.backends.config import BackendConfig
from evals.backends.registry import load_backend

Request = tuple[str, Prompt]  # (model folder, prompt)


class ModelPool:
    """Answers requests for any number of models, keeping the last one loaded."""

    def __init__(self, settings: BackendConfig, loader: Callable[[str], GenerationBackend] | None = None) -> None:
        self.settings = settings
        self._loader = loader or (lambda model: load_backend(model, settings))
        self._model: str | None = None
        self._backend: GenerationBackend | None = None

    def backend(self, model: str) -> GenerationBackend:
        if self._model != model:
            self.release()
            self._backend = self._loader(model)
            self._model = model
        assert self._backend is not None
        return self._backend

    def generate(
        self,
        requests: Sequence[Request],
        params: SamplingParams,
        progress: Callable[[int], None] | None = None,
    ) -> list[Completion]:
        """One completion per request, in order."""
        groups: dict[str, list[int]] = {}
        for i, (model, _) in enumerate(requests):
            groups.setdefault(model, []).append(i)
        # The model already in memory goes first: no reload when it is among the requested ones.
        order = sorted(groups, key=lambda m: m != self._model)
        results: list[Completion | None] = [None] * len(requests)
        for k, model in enumerate(order):
            rows = groups[model]
            # Each model draws from its own stream, so two agents' models never replay the same samples.
            outs = self.backend(model).generate(
                [requests[i][1] for i in rows], replace(params, seed=params.seed + 1000 * k), progress=progress
            )
            for i, completion in zip(rows, outs):
                results[i] = completion
        return results  # type: ignore[return-value]

    def release(self) -> None:
        """Free the loaded model (before training, which needs the memory)."""
        self._backend, self._model = None, None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
