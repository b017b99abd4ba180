"""Merge models with an exported algorithm, or any mergekit config, streaming through `run_merge`.

mergekit reads, merges and writes one tensor at a time, shards the output and
copies the tokenizer; with `StreamingTensorLoader` the process holds about one
tensor per input model plus the output shard being filled, never whole models.
Generated algorithms run in selfdev's sandbox worker, which mergekit calls per tensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml
from mergekit import merge_methods
from mergekit.config import MergeConfiguration
from mergekit.merge import run_merge
from mergekit.options import MergeOptions
from pydantic import ValidationError

from evals.atomic import replacing
from seeds.checkpoint import open_checkpoint
from seeds.compat import check_compatible
from seeds.filters import parse_filter
from seeds.resolve import resolve_model
from selfdev.errors import UserError
from selfdev.merging import DEFAULT_FILTER, close_shared_worker, method_name, register_algorithm_file, streaming_loaders


DEFAULT_MAX_SHARD = 2**30


class ApplyError(UserError, ValueError):
    """A config or an output folder that apply cannot use."""


def apply_algorithm(
    algorithm: str | Path,
    base: str,
    experts: Sequence[str],
    out: str | Path,
    *,
    filter: str = DEFAULT_FILTER,
    seed: int = 0,
    shard_bytes: int | None = None,
) -> Path:
    """Merge `experts` into `base` with the algorithm file; writes an HF model folder to `out`."""
    if not experts:
        raise ApplyError("give at least one expert")
    try:
        parse_filter(filter)
    except ValueError as e:
        raise ApplyError(str(e)) from None
    name = register_algorithm_file(algorithm)
    config = MergeConfiguration.model_validate(
        {
            "merge_method": name,
            "base_model": resolve_model(base),
            "models": [{"model": resolve_model(e)} for e in experts],
            "parameters": {"filter": filter, "seed": seed},
        }
    )
    return merge_to_disk(config, out, shard_bytes)


def apply_config(
    config_path: str | Path,
    out: str | Path,
    *,
    algorithms: Sequence[str | Path] = (),
    shard_bytes: int | None = None,
) -> Path:
    """Run a mergekit-format YAML whose `merge_method` may name an exported algorithm.

    The algorithm comes from `algorithms` or, failing that, from `<merge_method>.py`
    beside the config (where `selfdev export` puts it). Model names go through
    `seeds.resolve_model`, so embedded seed names work as well as folders and hub ids.
    """
    config_path = Path(config_path)
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ApplyError(f"cannot read {config_path}: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("merge_method"), str):
        raise ApplyError(f"{config_path} is not a mergekit config (no merge_method)")
    for algorithm in algorithms:
        register_algorithm_file(algorithm)
    method = raw["merge_method"]
    if method not in {m.spec.name for m in merge_methods.registered_methods()}:
        sibling = config_path.parent / f"{method}.py"
        if not sibling.is_file() or method_name(sibling) != method:
            raise ApplyError(
                f"merge_method {method!r} is not a mergekit method and {sibling} does not exist; pass --algorithm FILE.py"
            )
        register_algorithm_file(sibling)
    try:
        config = MergeConfiguration.model_validate(_resolve_models(raw))
    except (ValidationError, RuntimeError) as e:
        raise ApplyError(f"{config_path}: {str(e).splitlines()[0]}") from None
    return merge_to_disk(config, out, shard_bytes)


def _resolve_models(node: Any) -> Any:
    """Every `model:` / `base_model:` string of a mergekit config through resolve_model."""
    if isinstance(node, list):
        return [_resolve_models(item) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {}
    for key, value in node.items():
        if key in ("model", "base_model") and isinstance(value, str) and "+" not in value:
            resolved[key] = resolve_model(value)  # "model+lora" strings are left to mergekit
        else:
            resolved[key] = _resolve_models(value)
    return resolved


def _check_models(config: MergeConfiguration) -> int:
    """Fail early, naming the first differing tensor, if the inputs cannot be merged; return the largest base shard."""
    base_ref = config.base_model or config.referenced_models()[0]
    base = open_checkpoint(base_ref.model.path)
    others = [open_checkpoint(m.model.path) for m in config.referenced_models() if m != base_ref and m.lora is None]
    check_compatible(base, others)
    return max(base.shard_sizes().values())


def merge_to_disk(config: MergeConfiguration, out: str | Path, shard_bytes: int | None = None) -> Path:
    """run_merge into `out` (written aside and moved in place when complete).

    mergekit's writer holds a whole output shard before writing it, so that is
    most of what a merge holds in memory: output shards default to the base
    model's largest shard, capped at DEFAULT_MAX_SHARD.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ApplyError(f"{out} exists and is not empty; choose another --out or remove it")
    largest = _check_models(config)
    options = MergeOptions(out_shard_size=shard_bytes or min(largest, DEFAULT_MAX_SHARD), copy_tokenizer=True, quiet=True)
    try:
        with replacing(out) as tmp, streaming_loaders(config.referenced_models()):
            run_merge(config, str(tmp), options)
    finally:
        close_shared_worker()
    return out
