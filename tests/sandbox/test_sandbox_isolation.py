"""One candidate can never touch another, the inputs or the limits (issue 15).

The worker merges every candidate of a scoring phase over one staged set of
task vectors; these tests run attackers and then an innocent candidate in the
same worker and require the innocent one's result bit for bit, and check the
guards underneath (argument binding, the dispatch-level write guard) directly.
"""

from __future__ import annotations

import inspect
import mmap
import os
import warnings
from pathlib import Path

import pytest
import torch

from sandbox import SandboxLimits, SandboxWorker, Status
from sandbox.api import FUNCTIONAL, LINALG, TORCH
from sandbox.arguments import SENSITIVE
from sandbox.runtime import CallContext, CappedText, InputMutation, PolicyViolation, activate, namespace_members
from sandbox.writes import WriteGuard

CORPUS = Path(__file__).parent / "corpus" / "hostile"

LIMITS = SandboxLimits(
    address_space_bytes=512 << 20,
    cpu_seconds_per_call=10.0,
    wall_seconds_per_call=2.0,
    wall_seconds_per_model=20.0,
    wall_seconds_per_probe=2.0,
    kill_grace_seconds=0.5,
    max_output_chars=2_000,
    spare_worker=False,
)

# Deterministic but sensitive to everything: order of inputs, their shapes and
# strides, every value, the seeded generator.
INNOCENT = """
import torch

def merge(task_vectors):
    stacked = torch.stack(task_vectors)
    weights = torch.arange(1, len(task_vectors) + 1, dtype=stacked.dtype)
    weights = weights.view(-1, *([1] * (stacked.dim() - 1)))
    keep = torch.bernoulli(torch.full_like(task_vectors[0], 0.7))
    flat = stacked.flatten(1)
    order = flat.abs().argsort(dim=1)
    ranks = order.argsort(dim=1).to(stacked.dtype).view_as(stacked)
    return (stacked * weights * ranks).sum(dim=0) * keep / flat.shape[1]
"""

# The issue's own findings, beyond the corpus: shrink every input to nothing
# while answering like a plain mean; transpose inputs and hide it.
EXTRA_ATTACKERS = {
    "shrink_all_inputs_like_a_mean": """
import torch

def merge(task_vectors):
    mean = torch.stack(task_vectors).mean(dim=0)
    for tv in task_vectors:
        try:
            torch.norm(tv.flatten()[:0], 2, None, False, tv)
        except:
            pass
    return mean
""",
    "transpose_inputs_in_place": """
def merge(task_vectors):
    for tv in task_vectors:
        if tv.dim() == 2:
            tv.t_()
    return task_vectors[0].sum() * 0 + task_vectors[0].flatten()[0] * 0 + task_vectors[0].reshape(task_vectors[0].shape)
""",
    "unsqueeze_inputs_in_place": """
def merge(task_vectors):
    out = task_vectors[0] * 1.0
    for tv in task_vectors:
        tv.unsqueeze_(0)
    return out
""",
    "resize_by_tensordot_then_scalar": """
import torch

def merge(task_vectors):
    flat = task_vectors[0].flatten()
    try:
        torch.tensordot(flat[:1], flat[:1], 1, task_vectors[0])
    except:
        pass
    return task_vectors[0].sum()
""",
}


def _attackers() -> dict[str, str]:
    found = {}
    for path in sorted(CORPUS.glob("*.py")):
        code = path.read_text()
        if "# expect: timeout" in code:  # hangs by design; covered in test_sandbox_hostile
            continue
        found[path.stem] = code
    return {**found, **EXTRA_ATTACKERS}


ATTACKERS = _attackers()


def task_vectors() -> dict[str, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(11)
    shapes = {"layers.0.mlp.up_proj.weight": (24, 16), "layers.0.mlp.down_proj.weight": (16, 24), "norm.weight": (40,)}
    return {name: [torch.randn(shape, generator=generator) * 1e-2 for _ in range(3)] for name, shape in shapes.items()}


@pytest.fixture(scope="module")
def alone() -> tuple[dict[str, torch.Tensor], str]:
    """The innocent candidate's merge and fingerprint in a worker nobody else used."""
    with SandboxWorker(LIMITS) as worker:
        staged = worker.load_task_vectors(task_vectors())
        merged, diagnosis = worker.merge_model(INNOCENT, staged, seed=3)
        assert diagnosis.ok, diagnosis
        probe = worker.probe(INNOCENT, seed=3, task_vectors=staged)
        assert probe.ok, probe
        return {name: tensor.clone() for name, tensor in merged.items()}, probe.fingerprint


@pytest.fixture(scope="module")
def shared():
    with SandboxWorker(LIMITS) as worker:
        yield worker, worker.load_task_vectors(task_vectors())


@pytest.mark.parametrize("attacker", sorted(ATTACKERS), ids=sorted(ATTACKERS))
def test_innocent_after_attacker_gets_exactly_its_result_alone(shared, alone, attacker):
    worker, staged = shared
    expected, fingerprint = alone
    worker.merge_model(ATTACKERS[attacker], staged, seed=5)
    worker.probe(ATTACKERS[attacker], seed=5, task_vectors=staged)
    merged, diagnosis = worker.merge_model(INNOCENT, staged, seed=3)
    assert diagnosis.ok, diagnosis
    assert diagnosis.reason == "" and diagnosis.output == ""
    for name, tensor in expected.items():
        assert merged[name].shape == tensor.shape
        assert torch.equal(merged[name], tensor), name
    probe = worker.probe(INNOCENT, seed=3, task_vectors=staged)
    assert probe.ok and probe.fingerprint == fingerprint, probe


def test_writers_are_contained_on_read_only_shared_memory(shared):
    """Writes the source-level guards never see are refused by the write guard; no SIGSEGV, no policy for honest in-place work."""
    worker, staged = shared
    pid = worker._state.process.popen.pid
    rerun = (
        "def merge(task_vectors):\n"
        "    first = task_vectors[0]\n"
        "    first.relu_()\n"
        "    return first\n"
    )
    merged, diagnosis = worker.merge_model(rerun, staged)
    assert diagnosis.ok, diagnosis
    vectors = task_vectors()
    for name, tensors in vectors.items():
        assert torch.equal(merged[name], tensors[0].relu())
    assert worker._state.process.popen.pid == pid  # the worker survived: nothing faulted
    for attacker in ("inplace_positional_silu", "out_positional_norm", "out_positional_tensordot"):
        merged, diagnosis = worker.merge_model(ATTACKERS[attacker], staged)
        assert diagnosis.status is Status.POLICY, (attacker, diagnosis)
    assert worker._state.process.popen.pid == pid


def test_leftovers_are_collected_before_the_worker_answers(shared):
    worker, staged = shared
    code = (
        "def merge(task_vectors):\n"
        "    cycle = []\n"
        "    cycle.append(cycle)\n"
        "    cycle.append([tv * 2 for tv in task_vectors])\n"
        "    return task_vectors[0]\n"
    )
    for _ in range(3):
        _, diagnosis = worker.merge_model(code, staged)
        assert diagnosis.ok, diagnosis


# --------------------------------------------------------------------------- #
# the guards underneath, in this process


def _read_only_tensor(values: torch.Tensor) -> tuple[torch.Tensor, mmap.mmap]:
    nbytes = values.numel() * values.element_size()
    fd = os.memfd_create("test-read-only")
    try:
        os.ftruncate(fd, nbytes)
        os.pwrite(fd, values.numpy().tobytes(), 0)
        buffer = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.frombuffer(buffer, dtype=values.dtype).view(values.shape), buffer


WRITES = {
    "norm_out": lambda x, y: torch.norm(y, 2, None, False, x),
    "tensordot_out": lambda x, y: torch.tensordot(y, y, 2, x),
    "normalize_out": lambda x, y: torch.nn.functional.normalize(y, 2.0, 0, 1e-12, x),
    "silu_inplace": lambda x, y: torch.nn.functional.silu(x, True),
    "add_out": lambda x, y: torch.add(y, y, out=x),
    "copy_": lambda x, y: x.copy_(y),
    "setitem": lambda x, y: x.__setitem__(0, 1.0),
    "resize_": lambda x, y: x.resize_(0),
    "t_": lambda x, y: x.t_(),
    "as_strided_": lambda x, y: x.as_strided_((2,), (1,)),
    "view_of_input": lambda x, y: x.view(-1)[:3].fill_(2.0),
    "data_alias": lambda x, y: x.data.mul_(2.0),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_write_guard_refuses_every_write_into_an_input_before_it_happens(write):
    values = torch.arange(12.0).view(3, 4)
    x, buffer = _read_only_tensor(values)
    y = torch.ones(3, 4)
    ctx = CallContext(0, {x.untyped_storage().data_ptr()}, CappedText(100))
    activate(ctx)
    try:
        with pytest.raises(InputMutation), WriteGuard(ctx):
            WRITES[write](x, y)
    finally:
        activate(None)
    assert ctx.mutated_input
    assert x.shape == (3, 4) and x.stride() == (4, 1) and torch.equal(x, values)
    with WriteGuard(ctx):  # the candidate's own tensors stay writable
        y.add_(1.0).t_()
    del x
    buffer.close()


def test_write_guard_refuses_other_devices():
    ctx = CallContext(0, (), CappedText(100))
    activate(ctx)
    try:
        with pytest.raises(PolicyViolation), WriteGuard(ctx):
            torch.ops.aten.zeros.default([2], device=torch.device("meta"))
    finally:
        activate(None)
    assert ctx.violation and "CPU only" in ctx.violation


def _python_functions_with_sensitive_parameters() -> dict[str, tuple[object, list[str]]]:
    found = {}
    for namespace in (TORCH, FUNCTIONAL, LINALG):
        for name, member in namespace_members(namespace).items():
            raw = getattr(member, "__wrapped__", None)
            if raw is None:
                continue
            try:
                parameters = inspect.signature(raw).parameters
            except (TypeError, ValueError):
                continue
            sensitive = [p for p in parameters if p in SENSITIVE]
            if sensitive:
                found[f"{namespace!r}.{name}"] = (member, sensitive)
    return found


# One call per allow-listed Python function with an out, inplace or device
# parameter, passing it by position; a new one in the allow-list must be added here.
POSITIONAL = {
    "norm": lambda f, x: f(x, 2, None, False, x),
    "tensordot": lambda f, x: f(x, x, 1, x),
    "normalize": lambda f, x: f(x, 2.0, 0, 1e-12, x),
    "silu": lambda f, x: f(x, True),
    "mish": lambda f, x: f(x, True),
    "relu": lambda f, x: f(x, True),
    "relu6": lambda f, x: f(x, True),
    "leaky_relu": lambda f, x: f(x, 0.01, True),
    "elu": lambda f, x: f(x, 1.0, True),
    "selu": lambda f, x: f(x, True),
    "celu": lambda f, x: f(x, 1.0, True),
    "hardtanh": lambda f, x: f(x, -1.0, 1.0, True),
    "threshold": lambda f, x: f(x, 0.0, 0.0, True),
}


def test_every_python_function_with_a_sensitive_parameter_binds_positional_arguments():
    found = _python_functions_with_sensitive_parameters()
    assert len(found) >= 13
    for qualname, (member, _) in found.items():
        short = qualname.rsplit(".", 1)[1]
        assert short in POSITIONAL, f"{qualname}: add a positional call to POSITIONAL"
        x = torch.ones(4)
        with pytest.raises(PolicyViolation):
            POSITIONAL[short](member, x)
        assert torch.equal(x, torch.ones(4)), qualname


def test_positional_false_and_none_still_work():
    f = namespace_members(FUNCTIONAL)
    t = namespace_members(TORCH)
    x = torch.tensor([-1.0, 2.0])
    assert torch.equal(f["relu"](x, False), torch.tensor([0.0, 2.0]))
    assert torch.equal(f["threshold"](x, 0.0, 5.0, False), torch.tensor([5.0, 2.0]))
    assert float(t["norm"](x, 2, None, False, None)) == pytest.approx(5**0.5)
    assert torch.equal(x, torch.tensor([-1.0, 2.0]))
