"""Lazy, read-only view of the tensors in an HF model folder (safetensors, one file or sharded).

Tensors come back as memory-mapped views opened per call: their pages are read
on first touch and leave the process when the tensor is freed. A loader that
keeps a whole shard mapped instead keeps every page it ever touched resident,
which for a single-file 0.5B checkpoint is the whole model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import safetensors
import torch
from mergekit.io.lazy_tensor_loader import ShardedTensorIndex

from seeds.errors import SeedError
from seeds.resolve import resolve_model

_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """Sort layer 2 before layer 10, so "the first tensor that differs" reads naturally."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def read_tensor(path: str | Path, name: str) -> torch.Tensor:
    """One tensor of one safetensors file as a mapped view that owns its mapping."""
    with safetensors.safe_open(str(path), framework="pt") as f:
        return f.get_tensor(name)


@dataclass(frozen=True)
class TensorInfo:
    shape: tuple[int, ...]
    dtype: str  # safetensors dtype code: "F32", "BF16", "I64", ...

    @property
    def is_floating(self) -> bool:
        return self.dtype.startswith(("F", "BF"))


class Checkpoint:
    """The config and tensor metadata of a model folder; tensors are read on demand."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        config = self.folder / "config.json"
        if not config.is_file():
            raise SeedError(f"{self.folder} is not an HF model folder (no config.json)")
        self.config: dict = json.loads(config.read_text())
        try:
            index = ShardedTensorIndex.from_disk(str(self.folder))
        except (RuntimeError, FileNotFoundError):
            raise SeedError(f"{self.folder} has no model.safetensors or model.safetensors.index.json") from None
        if not index.is_safetensors:
            raise SeedError(f"{self.folder} holds PyTorch .bin weights; task vectors need safetensors")
        self._files = {name: self.folder / shard for name, shard in index.tensor_paths.items()}
        infos: dict[str, TensorInfo] = {}
        for shard in index.shards:
            with safetensors.safe_open(str(self.folder / shard.filename), framework="pt") as f:
                for name in f.keys():
                    view = f.get_slice(name)
                    infos[name] = TensorInfo(tuple(view.get_shape()), view.get_dtype())
        self.tensors: dict[str, TensorInfo] = {n: infos[n] for n in sorted(infos, key=natural_key)}

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    def get(self, name: str) -> torch.Tensor:
        if name not in self._files:
            raise KeyError(f"{self.folder} has no tensor {name!r}")
        return read_tensor(self._files[name], name)

    def shard_sizes(self) -> dict[str, int]:
        """Bytes per weight file, to size memory budgets against."""
        return {p.name: p.stat().st_size for p in sorted(set(self._files.values()))}

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.folder)!r})"


class CheckpointTensors(Mapping[str, torch.Tensor]):
    """Some tensors of a checkpoint, read from its files each time one is asked for.

    For a caller that reads them now and then, one at a time (the seed's
    weights, to add each merge candidate's task vector to): between reads the
    operating system's page cache holds them, not this process.
    """

    def __init__(self, checkpoint: Checkpoint, names: Sequence[str]) -> None:
        missing = [name for name in names if name not in checkpoint.tensors]
        if missing:
            raise KeyError(f"{checkpoint.folder} has no tensor {missing[0]!r}")
        self.checkpoint, self.names = checkpoint, list(names)
        self._selected = set(self.names)

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self._selected:
            raise KeyError(name)
        return self.checkpoint.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def model_folder(spec: str | Path) -> Path:
    """An embedded seed name, a local folder, or a hub id -> a local HF folder."""
    resolved = resolve_model(spec)
    if Path(resolved).is_dir():
        return Path(resolved)
    # A hub id: reuse mergekit's download (safetensors and json only), as run_merge would.
    from mergekit.common import ModelReference

    try:
        return Path(ModelReference.model_validate(resolved).local_path())
    except Exception as e:  # the hub client raises many types; all mean "could not fetch"
        raise SeedError(f"could not download {resolved!r} from the hub: {e}") from None


def open_checkpoint(spec: str | Path) -> Checkpoint:
    return Checkpoint(model_folder(spec))
