"""Every config schema: light to import, documented field by field, validated completely when a file is read."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from evals.backends.config import BackendConfig
from sandbox.limits import SandboxLimits
from seeds.debate.config import DebateConfig
from selfdev.cli import USER_ERRORS, app
from selfdev.config import BaselinesConfig, ConfigError, DiscoveryConfig
from selfdev.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "mergekit", "vllm", "trl", "peft")


def test_importing_the_configs_loads_no_torch_or_mergekit():
    code = (
        "import json, sys\n"
        "import selfdev.config, evals.backends.config, sandbox.limits\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def _models(model: type[BaseModel], seen: set) -> list[type[BaseModel]]:
    found = [model]
    seen.add(model)
    for info in model.model_fields.values():
        for kind in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                found += _models(kind, seen)
    return found


@pytest.mark.parametrize("schema", [DiscoveryConfig, BaselinesConfig, BackendConfig, DebateConfig])
def test_every_field_is_described(schema):
    missing = [
        f"{model.__name__}.{name}"
        for model in _models(schema, set())
        for name, info in model.model_fields.items()
        if not info.description
    ]
    assert not missing, f"fields without a description: {missing}"


def test_every_sandbox_limit_is_documented():
    # SandboxLimits is a dataclass (the sandbox's worker reads it); its fields carry attribute docstrings.
    body = next(n for n in ast.parse((ROOT / "sandbox/limits.py").read_text()).body if getattr(n, "name", "") == "SandboxLimits")
    documented = {
        node.target.id
        for node, after in zip(body.body, body.body[1:])
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
    }
    assert {f.name for f in dataclasses.fields(SandboxLimits)} <= documented


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text("experts: [a, b]\n" + text)
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("baselines: {taks_arithmetic: {weight: [0.5]}}", r"baselines: unknown mergekit method 'taks_arithmetic'; known: .*task_arithmetic"),
        ("baselines: {ties: {wieght: [0.5]}}", r"baselines: ties has no parameter 'wieght'; it takes .*weight"),
        ("sandbox: {spare_workers: false}", r"sandbox\.spare_workers: Unexpected keyword argument"),
        ("sandbox: {probe_k: 0}", r"sandbox: SandboxLimits\.probe_k must be > 0"),
        ("backend: {name: tpu}", r"backend\.name: Input should be 'auto', 'transformers' or 'vllm'"),
        ("generator: {revise_repeats: true}", r"generator: .*revise_repeats needs repair_attempts of 1 or more"),
        ("generator: {copy_ban: 1}", r"generator: .*copy_ban 1 would ban every token"),
        ("generator: {copy_ban: 16, copy_penalty: 0}", r"generator\.copy_penalty: Input should be greater than 0"),
        ("generator: {copy_ban_tail: 1}", r"generator: .*copy_ban_tail needs copy_ban"),
        ("generator: {temperature: 0.4}", r"generator: .*temperature 0.4 is below min_temperature 0.5"),
        ("generator: {copy_ban: 16, copy_ban_tail: -1}", r"generator\.copy_ban_tail: Input should be greater than or equal to 0"),
        ("generator: {plan_temperature: 0}", r"generator\.plan_temperature: Input should be greater than 0"),
    ],
)
def test_a_mistake_is_one_line_at_load(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as err:
        DiscoveryConfig.load(write(tmp_path, text))
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_sandbox_limits_are_typed_and_round_trip(tmp_path):
    config = DiscoveryConfig.load(write(tmp_path, "sandbox: {spare_worker: false, probe_shapes: [[4, 5]]}"))
    assert config.sandbox == SandboxLimits(spare_worker=False, probe_shapes=((4, 5),))
    config.dump(tmp_path / "resolved.yaml")
    assert DiscoveryConfig.load(tmp_path / "resolved.yaml") == config


def test_a_copy_ban_round_trips_with_an_infinite_or_a_finite_penalty(tmp_path):
    for text, penalty, tail in [
        ("generator: {copy_ban: 16}", float("inf"), 0), ("generator: {copy_ban: 16, copy_penalty: 3, copy_ban_tail: 1}", 3.0, 1)
    ]:
        config = DiscoveryConfig.load(write(tmp_path, text))
        assert (config.generator.copy_ban, config.generator.copy_penalty, config.generator.copy_ban_tail) == (16, penalty, tail)
        config.dump(tmp_path / "resolved.yaml")
        assert DiscoveryConfig.load(tmp_path / "resolved.yaml") == config


def test_configs_in_the_repository_load():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.startswith("baselines"):
            BaselinesConfig.load(path)
        elif not path.name.startswith("experts"):
            DiscoveryConfig.load(path)


def test_discover_with_a_misspelled_method_stops_before_any_stage(tmp_path):
    path = write(tmp_path, "baselines: {model_stocks: {}}")
    result = CliRunner().invoke(app, ["discover", "--config", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert "unknown mergekit method 'model_stocks'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_one_user_error_base_per_package():
    from evals.errors import BackendUnavailable, EvalsError
    from seeds.errors import SeedError
    from selfdev.apply import ApplyError
    from selfdev.export import ExportError
    from selfdev.merging import AlgorithmError, AlgorithmFileError

    assert set(USER_ERRORS) == {UserError, SeedError, EvalsError, FileNotFoundError}
    assert all(issubclass(e, UserError) for e in (ConfigError, ApplyError, ExportError, AlgorithmError, AlgorithmFileError))
    assert issubclass(BackendUnavailable, EvalsError)
