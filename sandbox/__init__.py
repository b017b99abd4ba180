"""The only place generated merge code runs.

Contract: ``def merge(task_vectors: list[Tensor]) -> Tensor``, called once per
parameter tensor with k task vectors of one shape; it returns one tensor of
that shape.

Layers, outermost first:

- ``check`` (policy.py), in the caller, once per candidate: parse, refuse imports other than
  torch / torch.nn.functional / math (and inert typing), dunder and
  underscore names, classes and unavailable builtins, check the contract,
  compile with RestrictedPython (>= 8.4). Its ``CheckedCode`` goes to every
  later probe and merge, and the worker process runs the compiled module it
  carries (it never compiles); ``check_source`` is the verdict alone.
- ``SandboxWorker`` (worker.py, process.py, staging.py): runs candidates in a separate process
  (worker_process.py, harden.py) started in its own session with a scrubbed
  environment, as ``nobody`` when the caller is root, with no_new_privs, a
  task limit, per-call address-space, CPU and wall-clock limits, a
  whole-model wall limit, and a process-group kill as the last resort.
  The worker's heap keeps freed memory for the next tensor's temporaries
  (heap.py); what it keeps counts against the next call's address space.
- Inside the worker (execute.py, guards.py, api.py, arguments.py, writes.py):
  candidate code sees a read-only stand-in for torch whose members refuse
  ``out=``, ``inplace`` and non-CPU devices however they are passed, take a
  list of equally shaped tensors where they take a tensor (stacked along a
  new dim 0, numpy's rule, so ``torch.sum(task_vectors, dim=0)`` works) and
  draw random numbers from the call's seeded generator; attribute access is an
  allow-list per exact type; only items of tensors, lists and dicts can be
  assigned. While a call runs, a dispatch-level write guard refuses every
  operation that would write into, resize or restride an input. Task vectors
  are mapped read-only and every call gets fresh views of them; a candidate
  that writes into one is rerun on private copies. The static gate refuses
  generators (``yield``) and classes, so no candidate code runs after its
  call; what a candidate leaves is collected, still guarded, before the
  worker answers.
- Results are validated (tensor, dense, floating, the staged shape, finite
  after the cast to the input dtype) and returned through shared memory;
  validation, copying and fingerprinting run under the call's limits.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.diagnosis import Diagnosis, Status
    from sandbox.fingerprint import choose_probe_tensors
    from sandbox.limits import SandboxLimits
    from sandbox.policy import CheckedCode, check, check_source
    from sandbox.worker import SandboxError, SandboxWorker, TaskVectorSet, tensor_seed

# Loaded on first use, so `sandbox.limits` (a config schema) is importable without torch.
_HOMES = {
    "Diagnosis": "diagnosis",
    "Status": "diagnosis",
    "SandboxLimits": "limits",
    "CheckedCode": "policy",
    "check": "policy",
    "check_source": "policy",
    "choose_probe_tensors": "fingerprint",
    "SandboxError": "worker",
    "SandboxWorker": "worker",
    "TaskVectorSet": "worker",
    "tensor_seed": "worker",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sandbox.{_HOMES[name]}"), name)
