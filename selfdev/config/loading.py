"""`ConfigError` and reading a config file: every failure is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from evals.atomic import write_text_atomic
from seeds.configfile import load_yaml_model
from selfdev.errors import UserError

M = TypeVar("M", bound=BaseModel)


class ConfigError(UserError, ValueError):
    """A discovery or baselines config that cannot be read or does not validate; the message is one line."""


def read_config(cls: type[M], path: str | Path, overrides: dict[str, Any] | None = None) -> M:
    return load_yaml_model(cls, path, ConfigError, overrides)


def write_config(config: BaseModel, path: Path) -> None:
    """The config as resolved (every default spelled out), readable by `read_config`."""
    write_text_atomic(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
