"""Code extraction from generator replies: fenced blocks, bare code, and entry points not named `merge`."""

from __future__ import annotations

from sandbox import check_source
from selfdev.generator.prompt import ONE_SHOT, extract_code


def test_fenced_block_defining_merge_is_taken_as_is():
    reply = f"Here is my idea.\n```python\n{ONE_SHOT}```\nIt weights each expert."
    assert extract_code(reply) == ONE_SHOT


def test_unclosed_fence_is_still_taken():
    reply = "```python\nimport torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors"
    code = extract_code(reply)
    assert code is not None and code.startswith("import torch")


def test_other_entry_point_name_gets_a_merge_that_calls_it():
    reply = """```python
import torch

def normalize(t):
    return t / (t.norm() + 1e-8)

def merge_task_vectors(task_vectors, scale=0.5):
    return scale * torch.stack([normalize(t) for t in task_vectors]).mean(dim=0)
```"""
    code = extract_code(reply)
    assert code is not None and code.rstrip().endswith("return merge_task_vectors(task_vectors)")
    assert check_source(code).ok


def test_no_usable_function_is_no_code():
    assert extract_code("I would average them.") is None
    two_required = "```python\ndef combine(task_vectors, weights):\n    return task_vectors[0]\n```"
    assert extract_code(two_required) is None
    keyword_required = "```python\ndef combine(task_vectors, *, weights):\n    return task_vectors[0]\n```"
    assert extract_code(keyword_required) is None
