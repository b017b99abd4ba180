"""The prompt's description of what merge code may use, read from the sandbox's own allow-list and static gate.

Nothing here is a second list of what is allowed: the names come from
`sandbox.api` (the namespaces candidate code imports) and the refusals from
`sandbox.policy`, so the prompt cannot promise a function the sandbox refuses.
The groups below only choose which allowed names to show first; a name the
sandbox drops disappears from the prompt with it (`shown_names` lists what is
shown, and a test runs every one of them in the sandbox).
"""

from __future__ import annotations

from functools import lru_cache

from sandbox.api import IMPORTABLE, LINALG, TORCH
from sandbox.policy import FORBIDDEN_BUILTINS
from sandbox.runtime import namespace_members

# Which allowed torch functions a merge algorithm reaches for first, by kind (display order only):
# arithmetic, reductions, selection, creation, shape, linear algebra.
_GROUPS = {
    "arithmetic": "add sub mul div pow sqrt abs sign clamp where maximum minimum lerp exp log",
    "reductions": "sum mean median std var amax amin norm prod cumsum",
    "selection": "sort argsort topk kthvalue quantile gather masked_fill",
    "creation": "zeros_like ones_like full_like tensor zeros ones arange",
    "shape": "stack cat reshape flatten unsqueeze squeeze transpose",
    "linear algebra": "matmul outer einsum svd qr",
}
_COMMON_LINALG = "norm vector_norm matrix_norm svd svdvals qr solve pinv"


def _allowed(names: str, members: set[str]) -> list[str]:
    """`names` (space-separated) that the sandbox has, in order."""
    return [n for n in names.split() if n in members]


@lru_cache(maxsize=1)
def shown_names() -> dict[str, list[str]]:
    """Qualified names the prompt shows (functions, linalg, random): only names in the sandbox's allow-list."""
    torch_names, linalg_names = set(namespace_members(TORCH)), set(namespace_members(LINALG))
    return {
        "functions": [f"torch.{n}" for names in _GROUPS.values() for n in _allowed(names, torch_names)],
        "linalg": [f"torch.linalg.{n}" for n in _allowed(_COMMON_LINALG, linalg_names)],
        "random": [f"torch.{n}" for n in _allowed("rand_like randn_like bernoulli", torch_names)],
    }


def _short(names: list[str]) -> str:
    return " ".join(n.rsplit(".", 1)[1] for n in names)


@lru_cache(maxsize=1)
def allowed_api() -> str:
    """The rules section of the generator's prompt."""
    shown = shown_names()
    torch_count = sum(callable(v) for v in namespace_members(TORCH).values())
    return "\n".join(
        [
            f"- Import only {IMPORTABLE}.",
            f"- torch has {torch_count} of its usual functions, e.g. {_short(shown['functions'])};",
            f"  torch.linalg: {_short(shown['linalg'])}; random numbers (seeded for you): {_short(shown['random'])}.",
            "  Tensor methods work as usual.",
            "- Build new tensors (merged = torch.zeros_like(task_vectors[0])) instead of writing into the inputs.",
            "- No out= or inplace=True, CPU only; no classes, no yield, no names starting with an underscore;",
            f"  no {' '.join(sorted(FORBIDDEN_BUILTINS))}.",
        ]
    )
