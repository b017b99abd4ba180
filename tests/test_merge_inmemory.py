"""In-memory human-method merges equal what mergekit's run_merge writes."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
from mergekit.config import MergeConfiguration
from mergekit.merge import run_merge
from mergekit.options import MergeOptions

from seeds.task_vectors import TaskVectors
from sandbox import SandboxLimits, SandboxWorker, TaskVectorSet
from selfdev.merging import MergeInputs, merge_generated, merge_with_method


@pytest.fixture(scope="module")
def task_vectors(tiny_model_dir, tiny_expert_dirs) -> TaskVectors:
    return TaskVectors(tiny_model_dir, tiny_expert_dirs, "all")


def run_merge_to_dict(tmp_path, seed, experts, method, params) -> dict[str, torch.Tensor]:
    # A list at the top of a mergekit config is a gradient over layers; per-expert values go on each model.
    shared = {k: v for k, v in params.items() if not isinstance(v, list)}
    per_model = [{k: v[i] for k, v in params.items() if isinstance(v, list)} for i in range(len(experts))]
    config = MergeConfiguration.model_validate(
        {
            "merge_method": method,
            "base_model": str(seed),
            "models": [{"model": str(e), "parameters": p} for e, p in zip(experts, per_model)],
            "parameters": shared,
        }
    )
    run_merge(config, str(tmp_path / method), MergeOptions(quiet=True, write_model_card=False))
    return safetensors.torch.load_file(tmp_path / method / "model.safetensors")


@pytest.mark.parametrize(
    "method, params",
    [
        ("task_arithmetic", {"weight": 0.4}),
        ("ties", {"weight": [0.2, 0.4, 0.6], "density": 0.5}),
        ("breadcrumbs", {"weight": 0.6, "density": 0.7}),
        ("model_stock", {}),
    ],
)
def test_in_memory_equals_run_merge(tmp_path, tiny_model_dir, tiny_expert_dirs, task_vectors, method, params):
    in_memory = merge_with_method(task_vectors, method, params)
    on_disk = run_merge_to_dict(tmp_path, tiny_model_dir, tiny_expert_dirs, method, params)
    assert set(in_memory) == set(on_disk)
    for name, tensor in in_memory.items():
        torch.testing.assert_close(tensor, on_disk[name], atol=1e-6, rtol=0)
        assert tensor.dtype == on_disk[name].dtype


def test_filter_limits_the_merge_and_dtype_is_cast(tiny_model_dir, tiny_expert_dirs):
    mlp = TaskVectors(tiny_model_dir, tiny_expert_dirs, "mlp")
    merged = merge_with_method(mlp, "task_arithmetic", {"weight": 1.0}, dtype=torch.bfloat16)
    assert set(merged) == set(mlp.names) and all(t.dtype == torch.bfloat16 for t in merged.values())
    name = mlp.names[0]
    expected = mlp.base(name) + sum(mlp.vectors(name))
    torch.testing.assert_close(merged[name], expected.to(torch.bfloat16))


def test_dare_is_reproducible_under_a_seed(task_vectors):
    params = {"weight": 0.4, "density": 0.5}
    first = merge_with_method(task_vectors, "dare_ties", params, random_seed=3)
    again = merge_with_method(task_vectors, "dare_ties", params, random_seed=3)
    other = merge_with_method(task_vectors, "dare_ties", params, random_seed=4)
    name = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(first[name], again[name]) and not torch.equal(first[name], other[name])


def test_merge_inputs_hold_base_and_vectors(tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(tiny_model_dir, tiny_expert_dirs)
    inputs = MergeInputs.load(tv)
    assert list(inputs.base) == tv.names == list(inputs.vectors)


def test_merge_inputs_streamed_into_the_worker_merge_as_the_in_memory_ones(tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(tiny_model_dir, tiny_expert_dirs)
    code = "def merge(task_vectors):\n    return task_vectors[0] - 2 * task_vectors[1]\n"
    with SandboxWorker(SandboxLimits(spare_worker=False)) as worker:
        staged = MergeInputs.load(tv, worker)
        assert isinstance(staged.vectors, TaskVectorSet) and staged.vectors.names == tuple(tv.names)
        merged, diagnosis = merge_generated(worker, code, staged)
        assert diagnosis.ok, diagnosis
        assert list(merged) == tv.names
        for name in tv.names:
            first, second, *_ = tv.vectors(name)
            torch.testing.assert_close(merged[name], tv.base(name) + first - 2 * second, rtol=1e-6, atol=1e-6)
        staged.close()
        with pytest.raises(ValueError, match="closed"):
            merge_generated(worker, code, staged)
