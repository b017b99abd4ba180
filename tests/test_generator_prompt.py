"""The generator's prompts and code extraction: the allowed API read from the sandbox, evolve parents, repair
prompts, trivial merges; fenced blocks, bare code, and entry points not named `merge`."""

from __future__ import annotations

import json

import pytest

from sandbox import SandboxLimits, SandboxWorker, check_source
from selfdev.generator.allowed import allowed_api, shown_names
from selfdev.generator.prompt import ONE_SHOT, extract_code, generator_messages
from selfdev.stages import CandidateRecord
from selfdev.generator.proposals import (
    diagnosis_text,
    evolve_messages,
    needs_repair,
    repair_messages,
    select_parents,
    trivial_fingerprints,
)
from selfdev.scores import Evaluation


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


# -- the allowed API, evolve and repair prompts ------------------------------------------------

@pytest.fixture(scope="module")
def worker():
    with SandboxWorker(SandboxLimits(spare_worker=False)) as w:
        yield w


def test_every_name_the_prompt_shows_exists_in_the_sandbox(worker):
    names = [n for group in shown_names().values() for n in group]
    assert len(names) > 40 and all(f" {n.rsplit('.', 1)[1]}" in allowed_api() for n in names)
    body = "".join(f"    used.append({n})\n" for n in names)
    code = f"import torch\nimport torch.linalg\n\ndef merge(task_vectors):\n    used = []\n{body}    return task_vectors[0] * 0.5\n"
    assert worker.probe(code).ok, worker.probe(code).reason
    # And a name outside the allow-list fails the same way, so the check above can fail.
    assert not worker.probe(code.replace("used = []", "used = [torch.load]")).ok


def test_prompt_rules_come_from_the_sandbox():
    from sandbox.api import IMPORTABLE
    from sandbox.policy import FORBIDDEN_BUILTINS

    user = generator_messages(3)[1]["content"]
    assert IMPORTABLE in user and all(f" {b}" in user for b in FORBIDDEN_BUILTINS)
    assert ONE_SHOT in user


def scored(index: int, accuracy: float, fingerprint: str, **kw) -> CandidateRecord:
    n = 20
    dev = Evaluation.of((f"p{i}" for i in range(n)), (i < accuracy * n for i in range(n)))
    code = f"import torch\n\ndef merge(task_vectors):\n    return {accuracy} * sum(task_vectors)\n"
    return CandidateRecord(0, index, "ok", code=code, fingerprint=fingerprint, dev=dev, id=index, **kw)


def test_parents_are_the_best_distinct_non_trivial_ones():
    pool = [
        scored(1, 0.5, "mean"),  # the best, but a plain mean
        scored(2, 0.4, "a"),
        scored(3, 0.35, "a"),  # the same function again
        scored(4, 0.3, "b", duplicate_of=2),  # its score was reused, not measured
        scored(5, 0.2, "c"),
        scored(6, 0.1, "d"),
        CandidateRecord(0, 7, "policy", code="import os"),
    ]
    parents = select_parents(pool, 2, trivial={"mean"})
    assert [p.id for p in parents] == [2, 5]
    user = evolve_messages(3, parents)[1]["content"]
    assert parents[0].code.rstrip() in user and parents[0].dev.describe() in user and "n=20" in user
    assert user.index("return 0.4 *") < user.index("return 0.2 *")  # best first
    assert "combine" in user and "scores higher" in user


def test_repair_prompt_shows_code_status_reason_and_line():
    code = "import torch\n\ndef merge(task_vectors):\n    x = torch.load('w')\n    return x\n"
    failed = CandidateRecord(0, 3, "policy", code=code, reason="torch.load is not in the allow-list", line=4)
    assert needs_repair(failed) and not needs_repair(CandidateRecord(0, 4, "no_code"))
    assert not needs_repair(CandidateRecord(0, 5, "ok", code=code))
    assert diagnosis_text(failed) == "policy: torch.load is not in the allow-list\nat line 4: `x = torch.load('w')`"
    user = repair_messages(3, failed)[1]["content"]
    assert code in user and diagnosis_text(failed) in user and json.dumps(repair_messages(3, failed))


def test_trivial_merges_are_recognised_by_fingerprint(worker):
    trivial = trivial_fingerprints(lambda code: worker.probe(code, seed=0), 3)
    assert sorted(trivial.values()) == ["expert 0 alone", "expert 1 alone", "expert 2 alone", "mean", "zeros"]
    rewritten_mean = "import torch\n\ndef merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)\n"
    assert trivial.get(worker.probe(rewritten_mean).fingerprint) == "mean"
    assert worker.probe(ONE_SHOT).fingerprint not in trivial
