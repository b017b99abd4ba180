"""Argument checking for allow-listed functions: out=, inplace, devices, pinned memory, generators.

Every argument that could make an allowed call write into a tensor it was
given, or leave the CPU, is checked by what it binds to, not by how it was
passed: functions written in Python (torch.norm, torch.tensordot,
F.normalize, the activations with an `inplace` flag, ...) bind positional and
keyword arguments to their signature first; functions implemented in C take
these arguments only by keyword (torch's argument parser declares them after
`*`), which tests/sandbox/test_sandbox_static.py checks for the whole
allow-list. The write guard (writes.py) backs this up inside the call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch

from sandbox.runtime import current, deny

# Parameter names whose value decides where a call writes or which device it uses.
SENSITIVE = frozenset({"out", "inplace", "device", "pin_memory", "generator"})


def is_cpu(device: Any) -> bool:
    """Whether `device` (str, torch.device, int index) names the CPU; a bare int is an accelerator index."""
    if isinstance(device, bool):
        return False
    if isinstance(device, int):
        return False
    try:
        return torch.device(device).type == "cpu"
    except (RuntimeError, TypeError, ValueError):
        return False


def vet(qualname: str, arguments: Mapping[str, Any]) -> None:
    """Refuse bound arguments that write into a given tensor, leave the CPU or bring a foreign generator."""
    if arguments.get("out") is not None:
        raise deny(f"{qualname}(out=...) is not allowed; use the return value")
    if arguments.get("inplace"):
        raise deny(f"{qualname}(inplace=True) is not allowed")
    device = arguments.get("device")
    if device is not None and not is_cpu(device):
        raise deny(f"{qualname}(device={device!r}) is not allowed; the sandbox is CPU only")
    if arguments.get("pin_memory"):
        raise deny(f"{qualname}(pin_memory=True) is not allowed")
    generator = arguments.get("generator")
    if generator is not None and type(generator) is not torch.Generator:
        raise deny(f"{qualname}(generator=...) must be a generator made by torch.Generator()")


def vet_kwargs(qualname: str, kwargs: dict[str, Any]) -> None:
    """vet() for a C function's keyword arguments; harmless `out=None` and `inplace=False` are dropped."""
    vet(qualname, kwargs)
    if "out" in kwargs:
        del kwargs["out"]
    if "inplace" in kwargs:
        del kwargs["inplace"]


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None  # implemented in C: sensitive arguments are keyword-only
    if not SENSITIVE & set(signature.parameters):
        return None
    return signature


def _bound(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None  # the call itself is malformed; the function says how
    arguments = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
    return arguments


def checked(fn: Callable[..., Any], qualname: str, *, seeded: bool = False) -> Callable[..., Any]:
    """`fn` with every sensitive argument vetted, by position or keyword; `seeded` adds the call's generator."""
    signature = _signature(fn)

    if signature is None:

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs:
                vet_kwargs(qualname, kwargs)
            if seeded and kwargs.get("generator") is None:
                kwargs["generator"] = current().generator
            return fn(*args, **kwargs)

        return call

    @functools.wraps(fn)
    def bound_call(*args: Any, **kwargs: Any) -> Any:
        arguments = _bound(signature, args, kwargs)
        if arguments is not None:
            vet(qualname, arguments)
        if seeded and kwargs.get("generator") is None and (arguments or {}).get("generator") is None:
            kwargs["generator"] = current().generator
        return fn(*args, **kwargs)

    return bound_call


def tensor_to(tensor: torch.Tensor) -> Callable[..., torch.Tensor]:
    """Tensor.to, whose first positional argument may be a device (str, torch.device or an int index)."""

    def to(*args: Any, **kwargs: Any) -> torch.Tensor:
        vet_kwargs("Tensor.to", kwargs)
        if args:
            first = args[0]
            if not isinstance(first, (torch.dtype, torch.Tensor)) and not is_cpu(first):
                raise deny(f"Tensor.to({first!r}) is not allowed; the sandbox is CPU only")
            for extra in args[1:]:
                if not isinstance(extra, (bool, torch.dtype, torch.memory_format)) and not is_cpu(extra):
                    raise deny(f"Tensor.to(..., {extra!r}) is not allowed; the sandbox is CPU only")
        return tensor.to(*args, **kwargs)

    return to
