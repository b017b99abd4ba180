"""Screening fingerprints with the run's real-parameter probe set: a shape branch no longer passes for the mean."""

from __future__ import annotations

from sandbox import SandboxLimits, SandboxWorker, choose_probe_tensors
from seeds.task_vectors import TaskVectors
from selfdev.archive import Archive, Candidate
from selfdev.candidates import Screen

MEAN = "import torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n"
MEAN_AGAIN = "def merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)\n"


def shape_branch(shape: tuple[int, ...]) -> str:
    # The mean on every probe shape; the first expert alone on the real parameter's shape.
    return (
        "import torch\n\ndef merge(task_vectors):\n"
        f"    if tuple(task_vectors[0].shape) == {tuple(shape)!r}:\n"
        "        return task_vectors[0] + 0.0\n"
        "    return torch.stack(task_vectors).mean(dim=0)\n"
    )


def fingerprint(screen: Screen, code: str, index: int) -> str:
    c = Candidate(iteration=0, sample_index=index, status="pending", code=code)
    assert screen(c, dedupe=False), c.reason
    return c.fingerprint


def test_real_parameter_probe_separates_a_shape_branch(tmp_path, tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(str(tiny_model_dir), [str(p) for p in tiny_expert_dirs], "mlp")
    names = choose_probe_tensors(tv.specs(), limit=2)
    shape = tv.specs()[[n for n, _ in tv.specs()].index(names[0])][1][0][0]
    assert shape not in SandboxLimits().probe_shapes
    with SandboxWorker(SandboxLimits()) as worker, Archive(tmp_path / "a.sqlite") as archive:
        synthetic = Screen(worker, archive)
        real = Screen(worker, archive, probe_set=worker.load_task_vectors({n: tv.vectors(n) for n in names}))
        # Without real parameters the branch hides behind the mean's fingerprint; with them it does not.
        assert fingerprint(synthetic, shape_branch(shape), 0) == fingerprint(synthetic, MEAN, 1)
        assert fingerprint(real, shape_branch(shape), 2) != fingerprint(real, MEAN, 3)
        # Equivalent rewrites still collide.
        assert fingerprint(real, MEAN_AGAIN, 4) == fingerprint(real, MEAN, 5)
