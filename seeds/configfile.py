"""Read a YAML file into a pydantic model, turning every failure into one readable line; field types configs share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(cls: type[M], path: str | Path, error: type[Exception], overrides: dict[str, Any] | None = None) -> M:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise error(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise error(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    _deep_update(data, overrides or {})
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise error(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def _deep_update(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Lay `overrides` over `data`; nested sections are merged, so {evaluation: {limit: 8}} keeps the other fields."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _deep_update(data[key], value)
        else:
            data[key] = value


def _task_name(value: str) -> str:
    from evals.errors import UnknownTaskError
    from evals.tasks import get_task

    try:
        return get_task(value).name
    except UnknownTaskError as e:
        raise ValueError(str(e)) from None


def _filter_spec(value: str) -> str:
    from seeds.filters import validate_filter_spec

    return validate_filter_spec(value)


# Field types shared by every config that names a task or a tensor filter.
TaskName = Annotated[str, AfterValidator(_task_name)]
FilterSpec = Annotated[str, AfterValidator(_filter_spec)]
