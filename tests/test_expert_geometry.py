"""Expert geometry: relative task-vector sizes and pairwise cosines, against a direct computation."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

import seeds.geometry as geometry
from seeds.geometry import ExpertGeometry, expert_geometry
from seeds.task_vectors import TaskVectors


def scaled_expert(seed: Path, expert: Path, out: Path, factor: float) -> Path:
    """A model whose task vector is `factor` times `expert`'s (exactly parallel to it)."""
    shutil.copytree(expert, out)
    base = safetensors.torch.load_file(seed / "model.safetensors")
    state = safetensors.torch.load_file(expert / "model.safetensors")
    state = {k: base[k] + factor * (v - base[k]) for k, v in state.items()}
    safetensors.torch.save_file(state, out / "model.safetensors", metadata={"format": "pt"})
    return out


def direct(seed: Path, experts: list[Path], filter: str):
    tv = TaskVectors(seed, experts, filter)
    taus = [torch.cat([v.double().flatten() for v in vs]) for vs in zip(*(tv.vectors(n) for n in tv.names))]
    w = torch.cat([tv.base(n).double().flatten() for n in tv.names])
    return taus, w


@pytest.mark.parametrize("filter", ["mlp", "all-linear"])
def test_sizes_and_cosines_match_a_direct_computation(tiny_model_dir, tiny_expert_dirs, filter, monkeypatch):
    monkeypatch.setattr(geometry, "_CHUNK", 1000)  # several chunks per tensor
    g = expert_geometry(tiny_model_dir, tiny_expert_dirs, filter, labels=["a", "b", "c"])
    taus, w = direct(tiny_model_dir, tiny_expert_dirs, filter)
    assert g.experts == ["a", "b", "c"] and g.numel == w.numel()
    for i, tau in enumerate(taus):
        assert g.relative[i] == pytest.approx(float(tau.norm() / w.norm()), rel=1e-4)
        for j, other in enumerate(taus):
            cos = float(tau @ other / (tau.norm() * other.norm()))
            assert g.cosines[i][j] == pytest.approx(cos, abs=1e-4)
    # Independent noise: nearly orthogonal, so no warning.
    assert abs(g.cosines[0][1]) < 0.2 and g.warnings() == []


def test_parallel_and_zero_experts_are_warned_about(tiny_model_dir, tiny_expert_dirs, tmp_path):
    double = scaled_expert(tiny_model_dir, tiny_expert_dirs[0], tmp_path / "double", 2.0)
    same = scaled_expert(tiny_model_dir, tiny_expert_dirs[0], tmp_path / "same", 0.0)
    g = expert_geometry(tiny_model_dir, [tiny_expert_dirs[0], double, same], "mlp")
    assert g.relative[1] == pytest.approx(2 * g.relative[0], rel=1e-4)
    assert g.cosines[0][1] == pytest.approx(1.0, abs=1e-4) and math.isnan(g.cosines[0][2])
    pairs = g.parallel_pairs()
    assert [(a, b) for a, b, _ in pairs] == [(tiny_expert_dirs[0].name, "double")]
    warnings = g.warnings()
    assert len(warnings) == 2 and "nearly parallel" in warnings[0] and "same" in warnings[1]


def test_json_round_trip(tiny_model_dir, tiny_expert_dirs):
    g = expert_geometry(tiny_model_dir, tiny_expert_dirs, "mlp")
    data = g.to_json()
    assert data["relative"] == g.relative
    assert ExpertGeometry.from_json(data) == g
