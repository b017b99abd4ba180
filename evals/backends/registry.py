"""The one backend factory: a `BackendConfig` and a model in, a loaded backend out (transformers or vLLM)."""

from __future__ import annotations

from evals.backends.base import GenerationBackend
from evals.backends.config import BackendConfig


def backend_name(config: BackendConfig) -> str:
    """The backend `config` loads: its name, with auto resolved to vllm when installed and a GPU is visible."""
    if config.name != "auto":
        return config.name
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "transformers"
    import torch

    return "vllm" if torch.cuda.is_available() else "transformers"


def load_backend(model: str, config: BackendConfig | None = None) -> GenerationBackend:
    """A backend holding `model`; knobs a backend has no use for are ignored (vLLM batches by itself)."""
    config = config or BackendConfig()
    if backend_name(config) == "vllm":
        from evals.backends.vllm_backend import VLLMBackend, VLLMBackendConfig

        options = dict(max_model_len=config.max_model_len, gpu_memory_utilization=config.gpu_memory_utilization)
        return VLLMBackend(model, VLLMBackendConfig(dtype=config.dtype, **options))
    from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig

    options = dict(batch_size=config.batch_size, dtype=config.dtype, threads=config.threads)
    return TransformersBackend(model, TransformersBackendConfig(**options))
