"""The generator's fixed prompt: the task, the allowed API, the signature and the one-shot example.

The `evolve` and repair prompts (selfdev.generator.proposals) build on these parts; what is read back from a
reply is selfdev.generator.reply's.

Follows the Self-Developing paper's prompt: describe the merging problem, show
task arithmetic as the one-shot example, ask for a new, better algorithm in one
Python code block.
"""

from __future__ import annotations

from selfdev.generator.allowed import allowed_api

# The example's header: imports and the signature every reply writes (selfdev.generator.copying exempts headers).
SIGNATURE = '''\
import torch

def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
'''

ONE_SHOT = SIGNATURE + '''\
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
# Of evolve's 66 failures in run 9 (T 0.6 and 0.8, 2026-12-02), the three most common are the last three lines, in
# their order: a Python `if` on a many-element tensor (10), dim=1 on the 1-D tensor of one weight per expert (11),
# the (values, indices) pair of torch.max(x, dim=...) used as a tensor (5).
PITFALLS = """- task_vectors is a Python list. torch functions take it as the experts stacked along dim 0
  (torch.sum(task_vectors, dim=0) sums over the experts), but a list has no tensor methods or arithmetic:
  stack it first (stacked = torch.stack(task_vectors)) to write stacked.sum(dim=0) or stacked * w.
- Keep every tensor floating point: torch.tensor([1.0, 0.5]), not torch.tensor([1, 2]); an integer tensor
  cannot take a float update in place.
- float(x) and x.item() only work on one-element tensors.
- `if`, `and`, `or` and `while` on a tensor need one element: choose per element with torch.where(cond, a, b).
- A tensor of one weight per expert (torch.stack([tv.norm() for tv in task_vectors])) is 1-D: use dim=0.
- torch.max(x, dim=0) returns (values, indices): use torch.amax(x, dim=0) for the values.
"""

PAPER_ASK = """
Here is an example (task arithmetic):
```python
{example}```

Invent a new, better merging algorithm. Think about how to resolve interference between
task vectors, how to weight them, and what to keep or drop. {reply} with the complete code
in one ```python code block, starting with `import torch`.
"""

# How a prompt asks for the reply, without and with a plan first (GeneratorConfig.plan_temperature): the plan is one
# sentence on what the algorithm changes, which the sampler draws hotter than the code that follows it.
REPLY = "Reply"
PLAN_FIRST = "First say in one sentence what your algorithm does differently, then reply"

# What the sampler writes after a plan, so the code follows it (the plan stage stops at its line's end).
CODE_START = "```python\nimport torch\n"


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


def reply_ask(plan: bool) -> str:
    """The start of the prompt's last sentence: asking for the code, or for a plan and then the code."""
    return PLAN_FIRST if plan else REPLY


def generator_messages(num_experts: int, plan: bool = False) -> list[dict[str, str]]:
    """The `paper` proposal: the fixed one-shot prompt (`plan`: asking for a plan before the code)."""
    return messages(task_text(num_experts) + PAPER_ASK.format(example=ONE_SHOT, reply=reply_ask(plan)))
