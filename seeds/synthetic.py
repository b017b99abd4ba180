"""Synthetic experts: seeded perturbations of a seed, written as sharded safetensors.

Stand-ins until debate-finetuned experts exist. They have the seed's exact
architecture, so every later stage (task vectors, merges, apply, benchmarks)
runs on real shapes. With no perturbation the same writer reshards a model,
which is how a single-file seed becomes one whose shards are smaller than RAM.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from mergekit.io.tensor_writer import TensorWriter

from evals.atomic import replacing
from seeds.checkpoint import model_folder, open_checkpoint
from seeds.embedded import cache_root
from seeds.filters import parse_filter

# Everything in an HF folder except the weights, which are rewritten.
SIDE_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
DEFAULT_SHARD_BYTES = 512 * 2**20


@dataclass(frozen=True)
class Perturbation:
    """Gaussian noise of `scale` times each selected tensor's standard deviation."""

    seed: int
    scale: float
    filter: str = "mlp"


def write_copy(
    source: str | Path,
    out: str | Path,
    *,
    perturbation: Perturbation | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Stream `source` tensor by tensor into `out` (sharded), perturbing the selected tensors."""
    ckpt = open_checkpoint(source)
    out = Path(out)
    selected = parse_filter(perturbation.filter) if perturbation else None
    generator = torch.Generator().manual_seed(perturbation.seed) if perturbation else None
    # mergekit's writer: HF shard names and index; it holds at most one shard before flushing.
    with replacing(out) as tmp:
        with TensorWriter(str(tmp), max_shard_size=shard_bytes) as writer:
            for name, info in ckpt.tensors.items():
                tensor = ckpt.get(name)
                if perturbation and info.is_floating and selected(name, info.shape):
                    work = tensor.to(torch.float32)
                    noise = torch.randn(work.shape, generator=generator) * (perturbation.scale * work.std())
                    tensor = (work + noise).to(tensor.dtype)
                writer.save_tensor(name, tensor)
        for side in SIDE_FILES:
            if (ckpt.folder / side).is_file():
                shutil.copy2(ckpt.folder / side, tmp / side)
    return out


def synthetic_experts(
    seed: str | Path,
    count: int = 3,
    scale: float = 0.02,
    *,
    filter: str = "mlp",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    root: Path | None = None,
) -> list[Path]:
    """`count` perturbed copies of `seed` (noise seeds 0..count-1), built once and cached."""
    folder = model_folder(seed)
    key = hashlib.sha256(f"{folder.resolve()}|{scale}|{filter}|{shard_bytes}".encode()).hexdigest()[:10]
    base = (root or cache_root().parent / "experts") / f"{folder.parent.name}-{folder.name}-{key}"
    paths = []
    for k in range(count):
        out = base / f"expert-{k}"
        if not (out / "config.json").is_file():
            write_copy(folder, out, perturbation=Perturbation(seed=k, scale=scale, filter=filter), shard_bytes=shard_bytes)
        paths.append(out)
    return paths
