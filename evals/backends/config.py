"""`BackendConfig`: which generation backend a stage uses, and its knobs; one type for every stage.

`selfdev eval`, the debate (`seeds.debate`), discovery and the baselines all
configure their backend with it and load it through one factory,
`evals.backends.registry.load_backend`. Imports no torch: configs read it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# auto: bfloat16 where this machine runs it fast (evals.backends.dtype), for models that are not merges;
# precise: linear weights as two bf16 terms where bf16 is fast (evals.backends.split_precision), else float32.
DtypeName = Literal["auto", "precise", "float32", "bfloat16", "bfloat16x2", "float16"]
BackendName = Literal["auto", "transformers", "vllm"]


class BackendConfig(BaseModel):
    """The evaluation or generation backend (evals.backends.registry): transformers on CPU, vllm on a GPU."""

    model_config = ConfigDict(extra="forbid")

    name: BackendName = Field(
        "transformers", description="transformers (CPU), vllm (GPU, `pip install '.[gpu]'`), or auto: vllm when "
        "it is installed and a CUDA GPU is visible, else transformers",
    )
    batch_size: int = Field(32, ge=1, description="transformers: rows decoded together (vLLM batches by itself)")
    dtype: DtypeName = Field(
        "float32", description="float32 for merged models: bf16 rounding erases most of a task vector (0.2-0.4% of "
        "the weights' norm); auto: bfloat16 where this machine runs it fast; precise: merged weights as two bf16 "
        "terms where bf16 is fast, else float32",
    )
    threads: int | None = Field(None, ge=1, description="transformers: torch intra-op threads (None: all cores)")
    max_model_len: int = Field(4096, ge=256, description="vLLM: prompt plus completion tokens (debate transcripts grow)")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM: share of the GPU's memory it takes")


def backend_config(**defaults: Any) -> Any:
    """`BackendConfig` whose unset fields take `defaults` instead of the class's, for a stage with other needs.

    `backend: backend_config(name="auto")` in a config: `{batch_size: 8}` in the YAML keeps name auto.
    """

    def fill(value: Any) -> Any:
        return {**defaults, **value} if isinstance(value, dict) else value

    return Annotated[BackendConfig, BeforeValidator(fill), Field(default_factory=lambda: BackendConfig(**defaults))]
