"""The generator's fixed prompt (task, allowed API, signature, one-shot example) and code extraction.

The `evolve` and repair prompts (selfdev.generator.proposals) build on these parts.

Follows the Self-Developing paper's prompt: describe the merging problem, show
task arithmetic as the one-shot example, ask for a new, better algorithm in one
Python code block.
"""

from __future__ import annotations

import ast
import re

from sandbox.api import MODULES
from selfdev.generator.allowed import allowed_api

ONE_SHOT = '''\
import torch

def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """Task arithmetic: scale the sum of the task vectors."""
    scale = 0.4
    merged = torch.zeros_like(task_vectors[0])
    for tv in task_vectors:
        merged += scale * tv
    return merged
'''

SYSTEM = "You are an expert machine-learning researcher who designs model-merging algorithms."

TASK = """\
We improve a language model's math reasoning by merging it with {k} expert models.
Each expert's task vector is (expert weights - base weights) for one parameter tensor.
Write a Python function `merge(task_vectors)` that receives the {k} task vectors of one
parameter (a list of torch tensors of the same shape, float32) and returns a single tensor
of that shape. The result is added to the base model's weights; it is called once for every
MLP weight matrix of the model.

Rules (what the sandbox that runs your code allows):
{api}
{pitfalls}"""

# The seed's most common runtime failures in benchmarks/bench_generator.py (72 paper-prompt samples at T 0.5-1.0,
# 2026-12-02): an integer tensor updated in place with floats (7), a reduction over the list itself (7), a
# many-element tensor turned into a number (2). The sandbox now takes the list itself where a torch function takes a
# tensor (sandbox.api, numpy's rule for a list of arrays), which leaves methods and arithmetic on the list to explain.
PITFALLS = """- task_vectors is a Python list. torch functions take it as the experts stacked along dim 0
  (torch.sum(task_vectors, dim=0) sums over the experts), but a list has no tensor methods or arithmetic:
  stack it first (stacked = torch.stack(task_vectors)) to write stacked.sum(dim=0) or stacked * w.
- Keep every tensor floating point: torch.tensor([1.0, 0.5]), not torch.tensor([1, 2]); an integer tensor
  cannot take a float update in place.
- float(x) and x.item() only work on one-element tensors.
"""

PAPER_ASK = """
Here is an example (task arithmetic):
```python
{example}```

Invent a new, better merging algorithm. Think about how to resolve interference between
task vectors, how to weight them, and what to keep or drop. Reply with the complete code
in one ```python code block, starting with `import torch`.
"""


# A reply start (GeneratorConfig.reply_start) that stacks the list first: treating the list of task vectors as one
# tensor (torch.sum(task_vectors, dim=0), task_vectors.abs(), torch.zeros_like(task_vectors)) was the most common
# runtime failure of the seed in bench_generator run 4 (2026-12-02): 4 of 10 paper failures at T 0.8, 5 of 13 evolve.
# Measured in run 5, it moved the failures rather than removing them (reductions over the wrong dimension, returned
# shape (experts, ...)): paper ran 12 of 24 against 14 of 24 without it, evolve 7 of 24. Off by default.
STACK_START = """```python
import torch


def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    stacked = torch.stack(task_vectors)  # (experts, *shape): reduce over the experts with dim=0
"""


def task_text(num_experts: int) -> str:
    """The problem and the rules, shared by every proposal kind."""
    return TASK.format(k=num_experts, api=allowed_api(), pitfalls=PITFALLS)


def messages(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def generator_messages(num_experts: int) -> list[dict[str, str]]:
    """The `paper` proposal: the fixed one-shot prompt."""
    return messages(task_text(num_experts) + PAPER_ASK.format(example=ONE_SHOT))


_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def code_reply(code: str) -> str:
    """A reply as the prompt asks for it: `code` in one python block (for scored code that has no reply)."""
    return f"```python\n{code.rstrip()}\n```"


def extract_code(reply: str) -> str | None:
    """The code block that defines `merge`; else the reply itself if it parses and defines `merge`;
    else a block (or the reply) whose one entry point has another name, with a `merge` that calls it.

    A reply cut off at the token limit leaves an unclosed fence: its content is still
    taken, and the sandbox then reports the syntax error, which is the useful diagnosis.
    """
    blocks = [b.strip() for b in _FENCE.findall(reply)]
    for block in blocks:
        if re.search(r"^\s*def\s+merge\s*\(", block, re.MULTILINE):
            return without_demo(block + "\n")
    try:
        tree = ast.parse(reply)
    except SyntaxError:
        tree = None
    if tree is not None and any(isinstance(n, ast.FunctionDef) and n.name == "merge" for n in tree.body):
        return without_demo(reply.strip() + "\n")
    for source in blocks or [reply.strip()]:
        aliased = _alias_entry_point(without_demo(source + "\n"))
        if aliased is not None:
            return aliased
    return None


def _alias_entry_point(source: str) -> str | None:
    """`source` plus `def merge(task_vectors)` calling its last top-level function of one required argument.

    The seed model often names its function `merge_task_vectors` or `merge_models`;
    the algorithm is the same, so it is kept rather than archived as "no code".
    Only parsed here, never run: the sandbox checks the result like any other.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    if not functions:
        return None
    entry = functions[-1]  # helpers come first, the entry point last
    args = entry.args
    required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
    if required != 1 or any(default is None for default in args.kw_defaults):
        return None
    return f"{source}\n\n\ndef merge(task_vectors):\n    return {entry.name}(task_vectors)\n"


# Top-level statements that only a script runs: an example call, a printout, a `__main__` block, a loop.
_DEMO = (ast.Expr, ast.If, ast.For, ast.While, ast.With, ast.Try)


def without_demo(source: str) -> str:
    """`source` without the script around the algorithm: what `merge` cannot reach is dropped.

    The seed often follows its function with example usage (`task_vectors = [torch.randn(4)]`,
    `print(merge(task_vectors))`, an `if __name__ == "__main__":` block). The sandbox would run it when
    it loads the module, on made-up inputs, and report that script's failure as the algorithm's
    (in two control runs 20 of 43 failures carried such a script; without it 5 of them ran). Kept: imports, functions,
    classes (so the policy still refuses them by name), the module docstring, the top-level
    assignments a function reads, and the imports of modules the sandbox has or whose names are read.
    Code that does not parse is returned unchanged, for the sandbox to diagnose.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    read = set().union(*(_globals_read(fn) for fn in tree.body if isinstance(fn, (ast.FunctionDef, ast.ClassDef))))

    def kept(i: int, node: ast.stmt) -> bool:
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return True  # the module docstring
        if isinstance(node, _DEMO):
            return False
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            return any(isinstance(n, ast.Name) and n.id in read for t in targets for n in ast.walk(t))
        return True

    body = [node for i, node in enumerate(tree.body) if kept(i, node)]
    # An import of a module the sandbox does not have, whose names nothing kept reads, is dropped too: the seed
    # copies the prompt's list of importable modules and adds one (`import random`, 1 of 24 paper replies in run 6).
    used = {n.id for node in body for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    body = [
        n for n in body
        if not (isinstance(n, (ast.Import, ast.ImportFrom)) and _unavailable(n) and not _bound_by(n) & used)
    ]
    dropped = [node for node in tree.body if node not in body]
    if not dropped:
        return source  # the code exactly as written
    # Cut by lines rather than `ast.unparse`, so what is kept stays as written, comments included.
    lines = source.splitlines()
    cut: set[int] = set()
    for node in dropped:
        first = node.lineno - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1  # the comment that introduces the script ("# Example usage:")
        cut.update(range(first, node.end_lineno))
    kept_text = "\n".join(line for i, line in enumerate(lines) if i not in cut)
    return re.sub(r"\n{3,}", "\n\n\n", kept_text).strip() + "\n"


def _unavailable(node: ast.Import | ast.ImportFrom) -> bool:
    """An import of a module the sandbox does not have (sandbox.api.MODULES), or a relative one."""
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "") not in MODULES
    return any(alias.name not in MODULES for alias in node.names)


def _bound_by(node: ast.Import | ast.ImportFrom) -> set[str]:
    """The names an import binds (`import a.b` binds `a`)."""
    if isinstance(node, ast.ImportFrom):
        return {alias.asname or alias.name for alias in node.names}
    return {alias.asname or alias.name.split(".")[0] for alias in node.names}


def _globals_read(definition: ast.FunctionDef | ast.ClassDef) -> set[str]:
    """Names `definition` reads that it does not bind itself (arguments, assignments): the globals it needs."""
    bound, loaded = set(), set()
    for node in ast.walk(definition):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
    return loaded - bound
