"""Screening: fingerprints with the run's real-parameter probe set, and the static gate once from reply to archive row."""

from __future__ import annotations

import sandbox.policy
import sandbox.worker_process
from sandbox import SandboxLimits, SandboxWorker, choose_probe_tensors
from seeds.task_vectors import TaskVectors
from selfdev.archive import Archive
from selfdev.candidates import CandidateQueue, Recorder
from selfdev.config import BackendConfig, CascadeConfig
from selfdev.scoring import ScorerSpec, local_executor
from selfdev.screen import Screen
from selfdev.stages import Sample, record_of

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


def fingerprint(screen: Screen, code: str) -> str:
    screening = screen.code(code)
    assert screening.passed, screening.reason
    return screening.fingerprint


def test_real_parameter_probe_separates_a_shape_branch(tmp_path, tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(str(tiny_model_dir), [str(p) for p in tiny_expert_dirs], "mlp")
    names = choose_probe_tensors(tv.specs(), limit=2)
    shape = tv.specs()[[n for n, _ in tv.specs()].index(names[0])][1][0][0]
    assert shape not in SandboxLimits().probe_shapes
    with SandboxWorker(SandboxLimits()) as worker:
        synthetic = Screen(worker)
        real = Screen(worker, probe_set=worker.load_task_vectors({n: tv.vectors(n) for n in names}))
        # Without real parameters the branch hides behind the mean's fingerprint; with them it does not.
        assert fingerprint(synthetic, shape_branch(shape)) == fingerprint(synthetic, MEAN)
        assert fingerprint(real, shape_branch(shape)) != fingerprint(real, MEAN)
        # Equivalent rewrites still collide.
        assert fingerprint(real, MEAN_AGAIN) == fingerprint(real, MEAN)


def test_one_candidate_from_reply_to_archive_row_runs_the_static_gate_once(
    tmp_path, tiny_model_dir, tiny_expert_dirs, monkeypatch
):
    from evals.tasks import get_task

    monkeypatch.setattr(type(get_task("arithmetic")), "max_new_tokens", 8)
    gate_runs = []
    gate = sandbox.policy.compile_candidate
    monkeypatch.setattr(sandbox.policy, "compile_candidate", lambda code, **kw: gate_runs.append(code) or gate(code, **kw))
    spec = ScorerSpec(
        seed=str(tiny_model_dir), experts=[str(p) for p in tiny_expert_dirs], filter="mlp", task="arithmetic",
        dev=get_task("arithmetic").examples("dev", None, 2), backend=BackendConfig(batch_size=8),
        cascade=CascadeConfig(slices=[1, 2]), sandbox=SandboxLimits(spare_worker=False),
    )
    reply = f"Here it is:\n```python\n{MEAN}```"
    with SandboxWorker(spec.sandbox) as worker, local_executor(spec) as executor, Archive(tmp_path / "a.sqlite") as archive:
        screening = Screen(worker).reply(reply)  # extract, gate, probe
        record = record_of(0, 0, Sample(reply), screening)  # the row as screened
        (row,) = CandidateQueue(executor, Recorder(archive)).put(record, screening.checked)  # merge, evaluate, record
        assert archive.get(row.id) == row
    assert row.status == "ok" and row.dev.n == 2 and row.fingerprint == screening.fingerprint
    assert set(row.timings) == {"probe", "merge", "evaluate"}
    # The caller's gate ran once; the sandbox processes run the module it compiled and never compile.
    assert gate_runs == [MEAN]
    assert not hasattr(sandbox.worker_process, "compile_candidate_cached")
