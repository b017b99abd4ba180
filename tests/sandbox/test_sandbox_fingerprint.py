"""Fingerprints separate what merges differently and join equivalent rewrites (issue 14 item 7, issue 15 class 6).

A fingerprint match lets a candidate inherit another's score unevaluated, so
an algorithm that only coincides with the mean on small probe tensors must
not share the mean's fingerprint; code that computes the same merge another
way must.
"""

from __future__ import annotations

import pytest
import torch

from sandbox import SandboxLimits, SandboxWorker, Status, choose_probe_tensors
from sandbox.fingerprint import SKETCH_ENTRIES, fingerprint

LIMITS = SandboxLimits(wall_seconds_per_probe=30.0, wall_seconds_per_call=30.0, spare_worker=False)

HEADER = "import torch\n\n"

MEAN = {
    "stack_mean": "def merge(tvs):\n    return torch.stack(tvs).mean(dim=0)\n",
    "loop_sum": (
        "def merge(tvs):\n    total = torch.zeros_like(tvs[0])\n    for tv in tvs:\n        total = total + tv\n"
        "    return total / len(tvs)\n"
    ),
    "reversed_sum": "def merge(tvs):\n    return sum(reversed(tvs)) / len(tvs)\n",
    "float64_inside": "def merge(tvs):\n    return torch.stack([t.double() for t in tvs]).mean(dim=0).float()\n",
    "reordered_stack": "def merge(tvs):\n    return torch.mean(torch.stack(tvs[::-1]), 0)\n",
}

TASK_ARITHMETIC = {
    "scaled_sum": "def merge(tvs):\n    return torch.stack(tvs).sum(dim=0) * 0.5\n",
    "scaled_terms": "def merge(tvs):\n    return sum(0.5 * tv for tv in tvs)\n",
    "float64_loop": (
        "def merge(tvs):\n    total = torch.zeros(tvs[0].shape, dtype=torch.float64)\n    for tv in tvs:\n"
        "        total += tv.double()\n    return (total / 2).float()\n"
    ),
}

_MEAN = "    mean = torch.stack(tvs).mean(dim=0)\n"

# Each coincides with the mean (or task arithmetic) on the old 97 / 16x24 / 40x7 probes.
DIFFERENT = {
    "rank_16": (
        "def merge(tvs):\n" + _MEAN + "    if mean.dim() != 2:\n        return mean\n"
        "    u, s, vh = torch.linalg.svd(mean, full_matrices=False)\n"
        "    k = min(16, s.shape[0])\n    return (u[:, :k] * s[:k]) @ vh[:k]\n"
    ),
    "rank_64": (
        "def merge(tvs):\n" + _MEAN + "    if mean.dim() != 2:\n        return mean\n"
        "    u, s, vh = torch.linalg.svd(mean, full_matrices=False)\n"
        "    k = min(64, s.shape[0])\n    return (u[:, :k] * s[:k]) @ vh[:k]\n"
    ),
    "top_384": (
        "def merge(tvs):\n" + _MEAN + "    flat = mean.flatten()\n    k = min(384, flat.numel())\n"
        "    kept = torch.zeros_like(flat)\n    index = flat.abs().topk(k).indices\n"
        "    kept[index] = flat[index]\n    return kept.view_as(mean)\n"
    ),
    "top_4096": (
        "def merge(tvs):\n" + _MEAN + "    flat = mean.flatten()\n    k = min(4096, flat.numel())\n"
        "    kept = torch.zeros_like(flat)\n    index = flat.abs().topk(k).indices\n"
        "    kept[index] = flat[index]\n    return kept.view_as(mean)\n"
    ),
    "clamp_above_probe_scale": "def merge(tvs):\n" + _MEAN + "    return mean.clamp(-0.05, 0.05)\n",
    "drop_above_probe_scale": "def merge(tvs):\n" + _MEAN + "    return mean * (mean.abs() < 0.05)\n",
    "size_branch": (
        "def merge(tvs):\n" + _MEAN + "    if mean.numel() > 100_000:\n        return mean * 1.5\n    return mean\n"
    ),
    "probe_shape_branch": (
        "def merge(tvs):\n" + _MEAN + "    if tuple(mean.shape) in [(97,), (16, 24), (40, 7), (192, 320)]:\n"
        "        return mean\n    return torch.stack(tvs).sum(dim=0) * 0.5 + mean\n"
    ),
}

# Separated by the default probes alone, without real parameters.
SEPARATED_WITHOUT_REAL = {"rank_16", "rank_64", "top_384", "top_4096", "clamp_above_probe_scale", "drop_above_probe_scale"}


def real_like(shape: tuple[int, ...], k: int = 3, seed: int = 5) -> list[torch.Tensor]:
    """Fine-tuning-like deltas: mostly ~1e-3, correlated across experts, a few outliers near 0.1."""
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(shape, generator=generator) * 1e-3
    outliers = (torch.rand(shape, generator=generator) < 1e-3) * torch.randn(shape, generator=generator) * 0.1
    return [common + torch.randn(shape, generator=generator) * 1e-3 + outliers for _ in range(k)]


@pytest.fixture(scope="module")
def worker():
    with SandboxWorker(LIMITS) as w:
        yield w


@pytest.fixture(scope="module")
def real(worker):
    """Two real-shaped parameters, one larger than the sketch's sample (so it is sampled)."""
    vectors = {"layers.0.mlp.up_proj.weight": real_like((512, 384)), "layers.0.mlp.down_proj.weight": real_like((96, 160), seed=6)}
    assert vectors["layers.0.mlp.up_proj.weight"][0].numel() > SKETCH_ENTRIES
    return worker.load_task_vectors(vectors)


def fingerprints(worker, sources: dict[str, str], task_vectors=None) -> dict[str, str]:
    found = {}
    for name, body in sources.items():
        diagnosis = worker.probe(HEADER + body, seed=0, task_vectors=task_vectors)
        assert diagnosis.ok, (name, diagnosis)
        found[name] = diagnosis.fingerprint
    return found


@pytest.mark.parametrize("with_real", [False, True], ids=["synthetic", "with-real"])
def test_equivalent_rewrites_collide(worker, real, with_real):
    task_vectors = real if with_real else None
    for family in (MEAN, TASK_ARITHMETIC):
        found = fingerprints(worker, family, task_vectors)
        assert len(set(found.values())) == 1, found
    assert fingerprints(worker, {"a": MEAN["stack_mean"]}, task_vectors) != fingerprints(
        worker, {"a": TASK_ARITHMETIC["scaled_sum"]}, task_vectors
    )


def test_different_algorithms_separate_on_real_parameters(worker, real):
    references = {
        fingerprints(worker, {"m": MEAN["stack_mean"]}, real)["m"],
        fingerprints(worker, {"t": TASK_ARITHMETIC["scaled_sum"]}, real)["t"],
    }
    found = fingerprints(worker, DIFFERENT, real)
    for name, value in found.items():
        assert value not in references, name
    assert len(set(found.values())) == len(found), found


def test_default_probes_alone_separate_rank_top_k_and_thresholds(worker):
    mean = fingerprints(worker, {"m": MEAN["stack_mean"]})["m"]
    found = fingerprints(worker, {name: DIFFERENT[name] for name in SEPARATED_WITHOUT_REAL})
    assert mean not in found.values(), found
    assert len(set(found.values())) == len(found), found


def test_real_parameters_change_the_fingerprint_only_through_the_outputs(worker, real):
    without = fingerprints(worker, {"m": MEAN["stack_mean"]})["m"]
    with_real = fingerprints(worker, {"m": MEAN["stack_mean"]}, real)["m"]
    assert without != with_real
    assert fingerprints(worker, {"m": MEAN["stack_mean"]}, real)["m"] == with_real


def test_real_probe_failures_name_the_parameter(worker, real):
    code = HEADER + "def merge(tvs):\n    if tvs[0].shape[0] == 96:\n        raise ValueError('no')\n    return tvs[0]\n"
    diagnosis = worker.probe(code, task_vectors=real)
    assert diagnosis.status is Status.RUNTIME
    assert diagnosis.reason == "layers.0.mlp.down_proj.weight: ValueError: no", diagnosis
    assert worker.probe(code).ok  # the synthetic probes never hit that shape


def test_fingerprinting_a_large_real_parameter_stays_in_a_small_memory_budget():
    # A dense 16-direction sketch of this output alone would take 16 x 4M x 8 bytes = 512 MiB.
    limits = SandboxLimits(address_space_bytes=256 << 20, wall_seconds_per_call=30.0, spare_worker=False)
    with SandboxWorker(limits) as small:
        staged = small.load_task_vectors({"big.weight": [t for t in real_like((2048, 2048), k=2)]})
        diagnosis = small.probe(HEADER + MEAN["stack_mean"], task_vectors=staged)
        assert diagnosis.ok, diagnosis


def test_fingerprint_is_bounded_and_order_sensitive():
    big = torch.randn(3_000_000)
    assert fingerprint([big], 3) == fingerprint([big.clone()], 3)
    assert fingerprint([big], 3) != fingerprint([big.flip(0)], 3)
    assert fingerprint([torch.zeros(5)], 3) != fingerprint([torch.zeros(6)], 3)


def test_choose_probe_tensors_takes_one_per_shape_largest_first():
    f32 = torch.float32
    specs = [
        ("l0.gate", [((8, 4), f32)] * 2),
        ("l0.down", [((4, 8), f32)] * 2),
        ("l0.big", [((16, 16), f32)] * 2),
        ("l1.gate", [((8, 4), f32)] * 2),
    ]
    assert choose_probe_tensors(specs) == ["l0.big", "l0.gate"]
    assert choose_probe_tensors(specs, limit=5) == ["l0.big", "l0.gate", "l0.down"]
    assert choose_probe_tensors(specs, limit=0) == []
