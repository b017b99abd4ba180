"""The write guard: every ATen operation a candidate causes is checked before it runs.

The attribute and argument checks (guards.py, arguments.py) stop the ways of
writing into a task vector that can be seen in the source. This catches the
rest at the one place all of them meet: torch's dispatcher. While a
candidate's call runs, a TorchDispatchMode looks at each operation's schema;
an operation whose schema marks an argument as written (`Tensor(a!)`: out=
arguments, in-place ops, resize_, set_, in-place view changes such as t_)
and whose argument shares storage with an input of the call is refused before
it touches the data, and the call is rerun on private copies. A write into the
read-only shared mapping would otherwise kill the worker (SIGSEGV); a resize
or transpose of a shared view would change what later candidates see. Any
operation asked to place a tensor on a device other than the CPU is refused
as a policy violation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sandbox.arguments import is_cpu
from sandbox.runtime import CallContext, InputMutation

_NO_WRITES: tuple[tuple[int, str, bool], ...] = ()
# OpOverload -> (position, name, keyword-only) of each argument its schema marks as written.
_written_arguments: dict[Any, tuple[tuple[int, str, bool], ...]] = {}


def written_arguments(func: Any) -> tuple[tuple[int, str, bool], ...]:
    found = _written_arguments.get(func)
    if found is None:
        found = tuple(
            (position, argument.name, argument.kwarg_only)
            for position, argument in enumerate(func._schema.arguments)
            if argument.alias_info is not None and argument.alias_info.is_write
        ) or _NO_WRITES
        _written_arguments[func] = found
    return found


def _tensors(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class WriteGuard(TorchDispatchMode):
    """Active for one candidate call; `ctx` says which storages are the call's inputs."""

    def __init__(self, ctx: CallContext) -> None:
        super().__init__()
        self.ctx = ctx

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # True would wrap __torch_dispatch__ in torch._disable_dynamo, whose
        # first call imports dynamo, sympy and some 800 modules (~85 MiB, 1.3 s)
        # into the worker; candidate code can never reach torch.compile.
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        ctx = self.ctx
        if ctx.protected:
            for position, name, keyword_only in written_arguments(func):
                target = kwargs.get(name) if keyword_only or position >= len(args) else args[position]
                for tensor in _tensors(target):
                    if isinstance(tensor, torch.Tensor) and ctx.is_input(tensor):
                        ctx.mutated_input = True
                        raise InputMutation(str(func))
        device = kwargs.get("device")
        if device is not None and not is_cpu(device):
            raise ctx.deny(f"placing a tensor on {device} is not allowed; the sandbox is CPU only")
        return func(*args, **kwargs)
