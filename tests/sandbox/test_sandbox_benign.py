"""Benign merge algorithms run in the sandbox and match plain-torch references; merge_model semantics."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sandbox import SandboxLimits, SandboxWorker, Status, tensor_seed

CORPUS = Path(__file__).parent / "corpus" / "benign"
SOURCES = {path.stem: path.read_text() for path in sorted(CORPUS.glob("*.py"))}

Reference = Callable[[list[torch.Tensor], torch.Generator], torch.Tensor]


# --------------------------------------------------------------------------- #
# plain-torch references, one per corpus file, written independently of it


def ref_task_arithmetic(tvs, g):
    return (tvs[0] + tvs[1] + sum(tvs[2:], torch.zeros_like(tvs[0]))) * 0.5


def ref_mean(tvs, g):
    return torch.stack(tvs).mean(dim=0)


def ref_ties(tvs, g):
    trimmed = []
    for tv in tvs:
        flat = tv.abs().flatten()
        keep = max(1, int(flat.numel() * 0.2))
        threshold = torch.sort(flat, descending=True).values[keep - 1]
        trimmed.append(tv * (tv.abs() >= threshold))
    trimmed = torch.stack(trimmed)
    elected = torch.sign(trimmed.sum(dim=0))
    agree = (torch.sign(trimmed) == elected) & (trimmed != 0)
    return (trimmed * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1)


def ref_dare_bernoulli(tvs, g):
    p = 0.7
    merged = torch.zeros_like(tvs[0])
    for tv in tvs:
        keep = torch.bernoulli(torch.full_like(tv, 1 - p), generator=g)
        merged = merged + tv * keep / (1 - p)
    return merged / len(tvs)


def ref_dare_rand_like(tvs, g):
    p = 0.5
    rescaled = torch.stack([tv * (torch.rand_like(tv, generator=g) >= p) / (1 - p) for tv in tvs])
    sign = torch.sign(rescaled.sum(dim=0))
    return (rescaled * (torch.sign(rescaled) == sign)).sum(dim=0) / len(tvs)


def ref_magnitude_ranked(tvs, g):
    stacked = torch.stack(tvs)
    flat = stacked.reshape(len(tvs), -1)
    winner = flat.abs().argmax(dim=0)
    return flat[winner, torch.arange(flat.shape[1])].reshape(tvs[0].shape)


def ref_magnitude_rank_weights(tvs, g):
    norms = [float(tv.norm()) for tv in tvs]
    order = sorted(range(len(tvs)), key=lambda i: (norms[i], i))
    ranks = [0.0] * len(tvs)
    for rank, i in enumerate(order, start=1):
        ranks[i] = float(rank)
    total = sum(ranks)
    return sum(torch.tensor(r / total) * tv for r, tv in zip(ranks, tvs))


def ref_cosine_weighted(tvs, g):
    mean = torch.stack(tvs).mean(dim=0).flatten()
    sims = torch.stack([F.cosine_similarity(tv.flatten(), mean, dim=0) for tv in tvs])
    weights = torch.softmax(sims * 4.0, dim=0)
    return sum(w * tv for w, tv in zip(weights, tvs))


def ref_pairwise_blend(tvs, g):
    merged = tvs[0]
    for step, tv in enumerate(tvs[1:], start=1):
        alpha = 1.0 / (step + 1)
        merged = (1 - alpha) * merged + alpha * tv
    return merged


def ref_helpers_and_lambdas(tvs, g):
    mean_norm = sum(tv.norm() for tv in tvs) / len(tvs)
    directions = [tv / tv.norm().clamp(min=1e-12) for tv in tvs]
    return sum(directions) * math.sqrt(len(tvs)) * mean_norm / len(tvs)


def ref_item_assignment(tvs, g):
    merged = torch.stack(tvs).mean(dim=0)
    small = merged.abs() < merged.abs().mean()
    merged = torch.where(small, torch.zeros_like(merged), merged * 1.5)
    return merged.clamp(-1.0, 1.0)


def ref_sign_consensus(tvs, g):
    stacked = torch.stack(tvs)
    majority = torch.sign(torch.sign(stacked).sum(dim=0))
    agree = (torch.sign(stacked) == majority).float()
    return (stacked * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)


def ref_median(tvs, g):
    return torch.stack(tvs).median(dim=0).values


def ref_topk_prune(tvs, g):
    mean = torch.stack(tvs).mean(dim=0)
    flat = mean.flatten()
    k = max(1, int(0.3 * flat.numel()))
    indices = flat.abs().topk(k).indices
    kept = torch.zeros_like(flat)
    kept[indices] = flat[indices]
    return kept.view_as(mean)


def ref_quantile_breadcrumbs(tvs, g):
    merged = torch.zeros_like(tvs[0])
    for tv in tvs:
        low, high = torch.quantile(tv.abs().flatten(), torch.tensor([0.1, 0.95]))
        merged = merged + tv * ((tv.abs() >= low) & (tv.abs() <= high))
    return merged / len(tvs)


def ref_clamped_mean(tvs, g):
    mean = torch.stack(tvs).mean(dim=0)
    limit = 3.0 * mean.std() + 1e-12
    return mean.clamp(-limit, limit)


def ref_mutates_own_inputs(tvs, g):
    trimmed = [tv * ~(tv.abs() < tv.abs().mean()) for tv in tvs]
    return torch.stack(trimmed).sum(dim=0)


def ref_svd_low_rank(tvs, g):
    mean = torch.stack(tvs).mean(dim=0)
    if mean.dim() != 2:
        return mean
    U, S, Vh = torch.linalg.svd(mean, full_matrices=False)
    r = min(2, S.shape[0])
    return (U[:, :r] * S[:r]) @ Vh[:r, :]


def ref_prints_and_no_grad(tvs, g):
    weights = torch.linspace(1.0, 2.0, len(tvs))
    weights = weights / weights.sum()
    return sum(w * tv for w, tv in zip(weights, tvs))


def ref_list_as_tensor(tvs, g):
    stacked = torch.stack(tvs)
    total, spread, middle = stacked.sum(dim=0), stacked.std(dim=0), stacked.median(dim=0).values
    largest = stacked.abs().amax(dim=0)
    return torch.where(spread < largest, middle, total / len(tvs))


REFERENCES: dict[str, Reference] = {
    name.removeprefix("ref_"): fn for name, fn in globals().items() if name.startswith("ref_")
}
# Linear algebra goes through LAPACK, whose blocking differs with the call shape.
TOLERANCE = {"svd_low_rank": 1e-5}


# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def worker():
    with SandboxWorker(SandboxLimits(wall_seconds_per_probe=20.0, wall_seconds_per_call=20.0)) as w:
        yield w


def random_task_vectors(shape: tuple[int, ...], k: int = 3, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    common = torch.randn(shape, generator=generator)
    return [(0.5 * common + torch.randn(shape, generator=generator)) * 0.01 for _ in range(k)]


def reference(name: str, tvs: list[torch.Tensor], seed: int) -> torch.Tensor:
    with torch.no_grad():
        return REFERENCES[name]([t.clone() for t in tvs], torch.Generator().manual_seed(seed))


def assert_matches(name: str, got: torch.Tensor, want: torch.Tensor) -> None:
    tol = TOLERANCE.get(name, 1e-6)
    torch.testing.assert_close(got, want.to(got.dtype), rtol=0, atol=tol, msg=lambda m: f"{name}: {m}")


def test_every_corpus_file_has_a_reference():
    assert len(SOURCES) >= 15
    assert set(SOURCES) == set(REFERENCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_probe_ok_with_fingerprint(worker, name):
    diagnosis = worker.probe(SOURCES[name])
    assert diagnosis.status is Status.OK, diagnosis
    assert diagnosis.fingerprint and len(diagnosis.fingerprint) == 16
    assert not diagnosis.zero_output


@pytest.mark.parametrize("shape", [(33,), (8, 12), (12, 5)], ids=["1d", "2d", "tall"])
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_matches_unsandboxed_reference(worker, name, shape):
    tvs = random_task_vectors(shape, seed=len(name))
    before = [t.clone() for t in tvs]
    merged, diagnosis = worker.merge_tensors(SOURCES[name], tvs, seed=11)
    assert diagnosis.ok, diagnosis
    assert merged.shape == tvs[0].shape and merged.dtype == tvs[0].dtype
    assert_matches(name, merged, reference(name, before, 11))
    for t, b in zip(tvs, before):
        assert torch.equal(t, b)


def test_print_output_is_returned(worker):
    _, diagnosis = worker.merge_tensors(SOURCES["prints_and_no_grad"], random_task_vectors((4, 4)))
    assert diagnosis.ok
    assert "merging 3 task vectors of shape (4, 4)" in diagnosis.output


def test_fingerprints_identify_functionally_identical_algorithms(worker):
    mean = worker.probe(SOURCES["mean"]).fingerprint
    same = [
        "def merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)\n",
        "import torch\ndef merge(tvs):\n    out = torch.zeros_like(tvs[0])\n    for t in tvs:\n        out += t / 3\n    return out\n",
    ]
    for code in same:
        assert worker.probe(code).fingerprint == mean
    assert worker.probe(SOURCES["median"]).fingerprint != mean
    assert worker.probe(SOURCES["ties"]).fingerprint != mean


def test_fingerprint_depends_on_seed_only_for_random_algorithms(worker):
    dare = SOURCES["dare_bernoulli"]
    assert worker.probe(dare, seed=0).fingerprint == worker.probe(dare, seed=0).fingerprint
    assert worker.probe(dare, seed=0).fingerprint != worker.probe(dare, seed=1).fingerprint


def test_zero_output_is_flagged(worker):
    code = "import torch\ndef merge(task_vectors):\n    return torch.zeros_like(task_vectors[0])\n"
    diagnosis = worker.probe(code)
    assert diagnosis.ok and diagnosis.zero_output
    merged, diagnosis = worker.merge_tensors(code, random_task_vectors((3, 3)))
    assert diagnosis.ok and diagnosis.zero_output and torch.count_nonzero(merged) == 0


def test_merge_model_dtypes_names_and_per_tensor_seeds(worker):
    vectors = {
        "model.layers.0.mlp.up_proj.weight": random_task_vectors((16, 8), seed=1),
        "model.layers.0.mlp.down_proj.weight": [t.to(torch.bfloat16) for t in random_task_vectors((8, 16), seed=2)],
        "model.norm.weight": random_task_vectors((8,), seed=3),
    }
    merged, diagnosis = worker.merge_model(SOURCES["dare_bernoulli"], vectors, seed=5)
    assert diagnosis.ok, diagnosis
    assert list(merged) == list(vectors)
    for name, tvs in vectors.items():
        assert merged[name].dtype == tvs[0].dtype and merged[name].shape == tvs[0].shape
        want = reference("dare_bernoulli", tvs, tensor_seed(5, name))
        torch.testing.assert_close(merged[name], want.to(tvs[0].dtype), rtol=0, atol=1e-6)
    # A tensor's random numbers do not depend on which other tensors are merged with it.
    name = "model.norm.weight"
    alone, _ = worker.merge_model(SOURCES["dare_bernoulli"], {name: vectors[name]}, seed=5)
    assert torch.equal(alone[name], merged[name])


def test_merge_model_reuses_staged_task_vectors_until_they_change(worker):
    vectors = {"a": random_task_vectors((6, 6), seed=4), "b": random_task_vectors((5,), seed=5)}
    first, _ = worker.merge_model(SOURCES["mean"], vectors)
    staged = dict(worker._state.staged["model"])
    second, _ = worker.merge_model(SOURCES["median"], vectors)
    assert dict(worker._state.staged["model"]) == staged
    torch.testing.assert_close(second["a"], reference("median", vectors["a"], 0), rtol=0, atol=0)
    # An in-place change by the caller is seen: the staged copy is refreshed.
    vectors["a"][0].add_(1.0)
    third, _ = worker.merge_model(SOURCES["mean"], vectors)
    assert dict(worker._state.staged["model"]) != staged
    torch.testing.assert_close(third["a"], first["a"] + 1.0 / 3, rtol=0, atol=1e-6)


def test_merge_model_results_survive_later_candidates(worker):
    vectors = {"w": random_task_vectors((7, 3), seed=9)}
    kept, _ = worker.merge_model(SOURCES["mean"], vectors)
    snapshot = kept["w"].clone()
    for name in ("median", "ties", "sign_consensus"):
        worker.merge_model(SOURCES[name], vectors)
    assert torch.equal(kept["w"], snapshot)


def test_empty_model_and_bad_inputs(worker):
    merged, diagnosis = worker.merge_model(SOURCES["mean"], {})
    assert merged == {} and diagnosis.ok
    with pytest.raises(ValueError, match="differ in shape"):
        worker.merge_tensors(SOURCES["mean"], [torch.zeros(3), torch.zeros(4)])
    with pytest.raises(ValueError, match="floating point"):
        worker.merge_tensors(SOURCES["mean"], [torch.zeros(3, dtype=torch.int64)] * 2)
    with pytest.raises(ValueError, match="no task vectors"):
        worker.merge_tensors(SOURCES["mean"], [])


# --------------------------------------------------------------------------- #
# property: random tensors through the benign set


@st.composite
def task_vector_lists(draw):
    shape = draw(st.one_of(st.tuples(st.integers(1, 40)), st.tuples(st.integers(1, 9), st.integers(1, 9))))
    k = draw(st.integers(2, 4))
    elements = st.floats(-1.0, 1.0, width=32, allow_nan=False, allow_subnormal=False)
    return [torch.from_numpy(draw(arrays(np.float32, shape, elements=elements))) for _ in range(k)]


@pytest.mark.filterwarnings("ignore:std\\(\\)")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(SOURCES)), tvs=task_vector_lists(), seed=st.integers(0, 2**31 - 1))
def test_property_random_tensors_match_reference(worker, name, tvs, seed):
    before = [t.clone() for t in tvs]
    want = reference(name, before, seed)
    merged, diagnosis = worker.merge_tensors(SOURCES[name], tvs, seed=seed)
    for t, b in zip(tvs, before):
        assert torch.equal(t, b)
    if not torch.isfinite(want).all():
        assert diagnosis.status is Status.BAD_OUTPUT, diagnosis
        return
    assert diagnosis.ok, diagnosis
    assert_matches(name, merged, want)


def test_load_task_vectors_lets_the_caller_drop_its_tensors(worker):
    vectors = {"a": random_task_vectors((6, 4), seed=21), "b": random_task_vectors((9,), seed=22)}
    want = {name: reference("median", tvs, 0) for name, tvs in vectors.items()}
    loaded = worker.load_task_vectors(vectors)
    assert loaded.names == ("a", "b") and len(loaded) == 2
    del vectors
    for _ in range(2):
        merged, diagnosis = worker.merge_model(SOURCES["median"], loaded)
        assert diagnosis.ok, diagnosis
        for name in want:
            torch.testing.assert_close(merged[name], want[name], rtol=0, atol=0)
    loaded.close()
    with pytest.raises(ValueError, match="closed"):
        worker.merge_model(SOURCES["median"], loaded)
    with SandboxWorker(SandboxLimits(spare_worker=False)) as other:
        other_set = other.load_task_vectors({"a": random_task_vectors((2,))})
        with pytest.raises(ValueError, match="another SandboxWorker"):
            worker.merge_model(SOURCES["median"], other_set)


def test_streamed_task_vectors_merge_like_a_mapping_and_must_match_their_specs(worker):
    vectors = {"a": random_task_vectors((6, 4), seed=23), "b": random_task_vectors((9,), seed=24)}
    specs = [(name, [(tuple(t.shape), t.dtype) for t in tvs]) for name, tvs in vectors.items()]
    produced = []

    def one_at_a_time():
        for name, tvs in vectors.items():
            produced.append(name)
            yield name, tvs

    streamed = worker.stream_task_vectors(specs, one_at_a_time())
    assert produced == ["a", "b"] and streamed.names == ("a", "b")
    merged, diagnosis = worker.merge_model(SOURCES["median"], streamed)
    assert diagnosis.ok, diagnosis
    for name, tvs in vectors.items():
        torch.testing.assert_close(merged[name], reference("median", tvs, 0), rtol=0, atol=0)
    streamed.close()

    with pytest.raises(ValueError, match="expected 3 task vectors of 'b', got 0 of None"):
        worker.stream_task_vectors(specs, iter([("a", vectors["a"])]))
    with pytest.raises(ValueError, match="more task vectors arrived"):
        worker.stream_task_vectors(specs, iter([*vectors.items(), ("c", vectors["b"])]))
    wrong = [("a", specs[0][1]), ("b", [((8,), torch.float32)] * 3)]
    with pytest.raises(ValueError, match=r"b: a task vector is \(9,\)"):
        worker.stream_task_vectors(wrong, iter(vectors.items()))
    with pytest.raises(ValueError, match="floating point"):
        worker.stream_task_vectors([("a", [((2,), torch.int64)])], iter([]))


def test_imports_bind_the_allow_listed_stand_ins(worker):
    code = (
        "import torch\nimport torch.nn.functional as F\nimport math\nfrom torch import nn\n"
        "def merge(task_vectors):\n    print(torch, F, math, nn.functional is F)\n    return task_vectors[0]\n"
    )
    diagnosis = worker.probe(code)
    assert diagnosis.ok, diagnosis
    assert (
        "<sandbox namespace torch> <sandbox namespace torch.nn.functional> <sandbox namespace math> True"
        in diagnosis.output
    )


def test_lists_of_tensors_stack_only_when_they_can(worker):
    # Unequal shapes are passed through, so the function refuses them in its own words; a list has no tensor methods.
    unequal = "import torch\ndef merge(task_vectors):\n    return torch.sum([task_vectors[0], task_vectors[0][:1]], dim=0)\n"
    diagnosis = worker.probe(unequal)
    assert diagnosis.status is Status.RUNTIME and "sum()" in diagnosis.reason, diagnosis
    method = "def merge(task_vectors):\n    return task_vectors.sum(dim=0)\n"
    assert worker.probe(method).status is not Status.OK
    mixed = "import torch\ndef merge(task_vectors):\n    return torch.mean([task_vectors[0], 1.0], dim=0)\n"
    assert worker.probe(mixed).status is Status.RUNTIME


def test_output_buffer_is_reused_once_results_are_dropped(worker):
    vectors = {"w": random_task_vectors((5, 7), seed=31)}
    merged, _ = worker.merge_model(SOURCES["mean"], vectors)
    pool = worker._state.outputs
    assert not pool.returned
    del merged
    assert len(pool.returned) == 1
    reused_id = pool.returned[0][0]
    merged, _ = worker.merge_model(SOURCES["median"], vectors)
    assert not pool.returned
    torch.testing.assert_close(merged["w"], reference("median", vectors["w"], 0), rtol=0, atol=0)
    del merged
    assert pool.returned[0][0] == reused_id
