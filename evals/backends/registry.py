"""Backends by name, so configs choose one with a string: `transformers` (CPU default) or `vllm` (GPU)."""

from __future__ import annotations

from typing import Any

from evals.backends.base import GenerationBackend


def load_backend(name: str, model: str, *, batch_size: int | None = None, dtype: str | None = None,
                 threads: int | None = None) -> GenerationBackend:
    """A backend holding `model`; options a backend has no use for are ignored (vLLM batches by itself)."""
    if name == "transformers":
        from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig

        options: dict[str, Any] = {k: v for k, v in (("batch_size", batch_size), ("dtype", dtype), ("threads", threads)) if v is not None}
        return TransformersBackend(model, TransformersBackendConfig(**options))
    if name == "vllm":
        from evals.backends.vllm_backend import VLLMBackend, VLLMBackendConfig

        return VLLMBackend(model, VLLMBackendConfig(dtype=dtype or "auto"))
    raise ValueError(f"unknown backend {name!r}; choose transformers or vllm")
