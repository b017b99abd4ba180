"""The generator's prompts and code extraction: the allowed API read from the sandbox, evolve parents, repair
prompts, trivial merges; fenced blocks, bare code, and entry points not named `merge`."""

from __future__ import annotations

import json

import pytest

from sandbox import SandboxLimits, SandboxWorker, check_source
from selfdev.generator.allowed import allowed_api, shown_names
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.prompt import ONE_SHOT, PLAN_FIRST, generator_messages
from selfdev.generator.reply import extract_code
from selfdev.stages import CandidateRecord
from selfdev.generator.directions import DIRECTIONS
from selfdev.generator.proposals import (
    REPAIR_NOTE,
    REVISE_NOTE,
    diagnosis_text,
    evolve_messages,
    evolve_prompts,
    needs_repair,
    repair_messages,
    repeated_name,
    repeats,
    revise_messages,
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


DEMO_REPLY = """```python
import torch

SCALE = 0.5
NOISE = torch.randn(3)

def merge(task_vectors):
    # per-element mean, scaled
    return SCALE * torch.stack(task_vectors).mean(dim=0)

# Example usage:
task_vectors = [torch.randn(4) for _ in range(3)]
result = merge(task_vectors)
print(result)

if __name__ == "__main__":
    print(merge(task_vectors))
```"""


def test_example_usage_around_the_function_is_dropped(worker):
    code = extract_code(DEMO_REPLY)
    assert code == (
        "import torch\n\nSCALE = 0.5\n\ndef merge(task_vectors):\n    # per-element mean, scaled\n"
        "    return SCALE * torch.stack(task_vectors).mean(dim=0)\n"
    )
    # As written, the script's `__name__` is refused by the policy; without it the algorithm runs.
    raw = DEMO_REPLY.split("```python\n")[1].split("```")[0]
    assert not check_source(raw).ok
    assert worker.probe(code, seed=0).ok


def test_code_without_a_script_is_kept_exactly_and_unparsable_code_is_left_for_the_sandbox():
    assert extract_code(f"```python\n{ONE_SHOT}```") == ONE_SHOT
    broken = "import torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors\nprint(1)\n"
    assert extract_code(f"```python\n{broken}```") == broken


def test_an_unavailable_import_is_dropped_only_when_nothing_reads_it(worker):
    reply = """```python
import torch
import math
import random
from numpy import linalg

def merge(task_vectors):
    return torch.stack(task_vectors).mean(dim=0)
```"""
    code = extract_code(reply)
    assert code == "import torch\nimport math\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n"
    assert worker.probe(code, seed=0).ok
    used = reply.replace(".mean(dim=0)", ".mean(dim=0) * random.random()")
    assert "import random" in extract_code(used)
    assert check_source(extract_code(used)).status.value == "policy"


def test_a_global_a_helper_reads_is_kept_and_a_class_stays_for_the_policy_to_refuse():
    reply = """```python
import torch
EPS = 1e-8
class Helper:
    pass

def unit(t):
    return t / (t.norm() + EPS)

def merge(task_vectors):
    return torch.stack([unit(t) for t in task_vectors]).mean(dim=0)
```"""
    code = extract_code(reply)
    assert "EPS = 1e-8" in code and "class Helper" in code
    assert check_source(code).status.value == "policy"


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
    assert DIRECTIONS[-1] in user and "scores higher" in user


def test_every_evolve_sample_gets_its_own_parents_and_direction_reproducibly():
    pool = [scored(i, 0.5 - i / 100, f"f{i}") for i in range(5)]  # ranked, best first
    prompts = evolve_prompts(3, pool, shown=2, n=8, seed=7)
    assert prompts == evolve_prompts(3, pool, shown=2, n=8, seed=7)  # a resumed run asks the same
    assert prompts != evolve_prompts(3, pool, shown=2, n=8, seed=8)
    users = [p[1]["content"] for p in prompts]
    for i, user in enumerate(users):
        assert DIRECTIONS[i % len(DIRECTIONS)] in user
        shown = [j for j, p in enumerate(pool) if p.code.rstrip() in user]
        assert len(shown) == 2 and user.index(pool[shown[0]].code.rstrip()) < user.index(pool[shown[1]].code.rstrip())
    assert len({tuple(j for j, p in enumerate(pool) if p.code.rstrip() in u) for u in users}) > 1
    # A pool smaller than `shown`: every prompt shows all of it.
    assert all(pool[0].code.rstrip() in p[1]["content"] for p in evolve_prompts(3, pool[:1], shown=2, n=3, seed=0))


def test_a_plan_first_changes_only_how_the_reply_is_asked_for():
    pool = [scored(i, 0.5 - i / 100, f"f{i}") for i in range(3)]
    paper, planned = generator_messages(3)[-1]["content"], generator_messages(3, plan=True)[-1]["content"]
    assert "Reply with the complete code\nin one ```python code block" in paper and PLAN_FIRST not in paper
    assert planned == paper.replace("Reply with", PLAN_FIRST + " with")
    for plain, plan in zip(evolve_prompts(3, pool, 2, 4, seed=1), evolve_prompts(3, pool, 2, 4, seed=1, plan=True)):
        assert "\nReply with the complete code in one" in plain[-1]["content"] and PLAN_FIRST not in plain[-1]["content"]
        assert plan[-1]["content"] == plain[-1]["content"].replace("Reply with", PLAN_FIRST + " with")
    # A repair asks the failed request again, the plan with it.
    failed = CandidateRecord(0, 0, "runtime", code="x", reason="boom", prompt=json.dumps(generator_messages(3, plan=True)))
    assert PLAN_FIRST in repair_messages(3, failed)[-1]["content"]


def test_repair_asks_the_failed_request_again_with_the_diagnosis():
    code = "import torch\n\ndef merge(task_vectors):\n    x = torch.load('w')\n    return x\n"
    evolve = json.dumps(evolve_messages(3, [scored(1, 0.4, "a")], DIRECTIONS[0]))
    failed = CandidateRecord(0, 3, "policy", code=code, reason="torch.load is not in the allow-list", line=4, prompt=evolve)
    assert needs_repair(failed) and not needs_repair(CandidateRecord(0, 4, "no_code"))
    assert not needs_repair(CandidateRecord(0, 5, "ok", code=code))
    assert diagnosis_text(failed) == "policy: torch.load is not in the allow-list\nat line 4: `x = torch.load('w')`"
    chat = repair_messages(3, failed)
    asked = json.loads(evolve)
    assert chat[:-1] == asked[:-1] and chat[-1]["content"].startswith(asked[-1]["content"])
    assert chat[-1]["content"].endswith(REPAIR_NOTE.format(diagnosis=diagnosis_text(failed)))
    # The failed function itself is not shown (the seed copies it): only the line the diagnosis names.
    assert "return x" not in chat[-1]["content"]
    # A candidate that kept no prompt answered the paper prompt.
    bare = CandidateRecord(0, 3, "runtime", code=code, reason="boom")
    assert repair_messages(3, bare)[-1]["content"].startswith(generator_messages(3)[-1]["content"])


def test_trivial_merges_are_recognised_by_fingerprint(worker):
    trivial = trivial_fingerprints(lambda code: worker.probe(code, seed=0), 3)
    assert sorted(trivial.values()) == ["expert 0 alone", "expert 1 alone", "expert 2 alone", "mean", "zeros"]
    rewritten_mean = "import torch\n\ndef merge(task_vectors):\n    return sum(task_vectors) / len(task_vectors)\n"
    assert trivial.get(worker.probe(rewritten_mean).fingerprint) == "mean"
    assert worker.probe(ONE_SHOT).fingerprint not in trivial


def test_known_algorithms_run_in_the_sandbox_and_differ(worker):
    verdicts = {name: worker.probe(code, seed=0) for name, code in EXAMPLES.items()}
    assert all(v.ok for v in verdicts.values()), {n: v.reason for n, v in verdicts.items() if not v.ok}
    assert len({v.fingerprint for v in verdicts.values()}) == len(EXAMPLES)
    assert EXAMPLES["task_arithmetic"] == ONE_SHOT


# -- replies cut by the token limit or stopped at their code block's end ---------------------------

def test_a_reply_cut_after_merge_keeps_merge_and_a_cut_inside_merge_is_left_for_the_sandbox(worker):
    whole = "import torch\n\ndef merge(task_vectors):\n    return 0.5 * torch.stack(task_vectors).sum(dim=0)\n"
    cut_in_test = "\n# Test it\ndef test_merge():\n    tvs = [\n        torch.tensor([1.0, 0.5], dtype=torch.float32),\n        torch.tensor([2.0"
    code = extract_code(f"```python\n{whole}{cut_in_test}")
    assert code == whole and worker.probe(code, seed=0).ok
    cut_in_merge = whole[: whole.index("sum(")]
    assert extract_code(f"```python\n{cut_in_merge}") == cut_in_merge.strip() + "\n"
    assert check_source(extract_code(f"```python\n{cut_in_merge}")).status.value == "syntax"


def test_a_reply_stopped_at_its_code_blocks_end_keeps_its_closing_fence():
    from evals.backends.base import Completion, truncate_at_stop
    from selfdev.generator.reply import CODE_END
    from selfdev.generator.sampler import reply_of

    written = f"Idea:\n```python\n{ONE_SHOT}```\nThis weights every expert the same."
    text, hit = truncate_at_stop(written, (CODE_END,))  # as the backend returns it
    assert hit and "This weights" not in text
    reply = reply_of("", Completion(text, 90, "stop"))
    assert reply == f"Idea:\n```python\n{ONE_SHOT}```" and extract_code(reply) == ONE_SHOT
    # An opening fence names its language, so generation does not stop there.
    assert not truncate_at_stop("Idea:\n```python\nimport torch\n", (CODE_END,))[1]
    cut = "```python\nimport torch\n\ndef merge(task_vectors):\n    return"
    assert reply_of("", Completion(cut, 320, "length")) == cut  # cut at the limit: left as it was cut


def test_parents_are_shown_without_long_docstrings_comment_lines_and_unused_imports():
    from selfdev.generator.reply import compact

    verbose = '''import torch
import torch.nn as nn
from typing import List

def merge(task_vectors: List[torch.Tensor]) -> torch.Tensor:
    """
    Merge the experts.

    Args:
        task_vectors: the task vectors.
    """
    # weight the experts
    weights = torch.tensor([0.5, 0.3, 0.2])  # by how much each helps
    hint = "# a string, not a comment"
    return sum(w * tv for w, tv in zip(weights, task_vectors))
'''
    shown = compact(verbose)
    assert shown == (
        "import torch\nfrom typing import List\n\ndef merge(task_vectors: List[torch.Tensor]) -> torch.Tensor:\n"
        "    weights = torch.tensor([0.5, 0.3, 0.2])  # by how much each helps\n"
        '    hint = "# a string, not a comment"\n    return sum(w * tv for w, tv in zip(weights, task_vectors))\n'
    )
    assert compact(EXAMPLES["ties_example"]) == EXAMPLES["ties_example"]  # a one-line docstring names the idea
    assert compact("def merge(:\n") == "def merge(:\n"
    user = evolve_messages(3, [CandidateRecord(0, 1, "ok", code=verbose, fingerprint="v", dev=Evaluation.of(["p"], [True]), id=1)])
    assert shown.rstrip() in user[1]["content"] and "Args:" not in user[1]["content"]


def test_a_merge_a_later_merge_replaces_is_dropped_unless_module_code_reads_it(worker):
    first = "import torch\n\ndef merge(task_vectors):\n    return 0.4 * sum(task_vectors)\n"
    last = "\ndef merge(task_vectors):\n    return torch.stack(task_vectors).median(dim=0).values\n"
    code = extract_code(f"```python\n{first}{last}\nprint(merge([torch.ones(2)]))\n```")
    assert code.count("def merge") == 1 and "0.4" not in code and "print" not in code and last.strip() in code
    assert worker.probe(code, seed=0).ok
    assert check_source(first + last).status.value == "syntax"  # what the sandbox says of both
    chained = f"{first}\nbase = merge\n\ndef merge(task_vectors):\n    return base(task_vectors) * 2\n"
    assert extract_code(f"```python\n{chained}```") == chained  # the first is read: left for the sandbox to refuse


def test_a_run_of_samples_can_share_its_parents_and_each_keeps_its_own_direction():
    pool = [scored(i, 0.5 - i / 100, f"f{i}") for i in range(6)]
    draws = set()
    for seed in range(4):
        users = [p[1]["content"] for p in evolve_prompts(3, pool, shown=2, n=8, seed=seed, group=4)]
        cut = [u[: u.index("scores higher.")] for u in users]  # everything before the direction
        assert len(set(cut[:4])) == 1 and len(set(cut[4:])) == 1
        assert all(DIRECTIONS[i % len(DIRECTIONS)] in u for i, u in enumerate(users))
        draws |= {cut[0], cut[4]}
    assert len(draws) > 2  # each run draws its parents anew


def test_only_a_block_cut_at_the_end_of_the_reply_loses_its_tail():
    """A closed block with a broken helper after `merge` was not cut by the token limit: the sandbox sees it whole."""
    code = "import torch\n\ndef merge(task_vectors):\n    return helper(task_vectors)\n\ndef helper(t):\n    return (t[0]\n"
    assert extract_code(f"```python\n{code}```\nDone.") == code
    assert extract_code(f"```python\n{code}").count("def helper") == 0  # cut at the limit: the unfinished tail goes


def test_an_earlier_merge_read_at_load_time_is_kept():
    from selfdev.generator.reply import compact

    chained = "def merge(t):\n    return t[0]\n\ndef twice(t, base=merge):\n    return base(t)\n\ndef merge(t):\n    return twice(t)\n"
    assert extract_code(f"```python\n{chained}```") == chained
    assert compact("# only a comment\n").strip() == ""  # a module with no statements: nothing to show, no error


def test_a_repeat_is_asked_again_naming_what_it_repeats():
    parents = [scored(1, 0.4, "a"), scored(2, 0.3, "b")]
    evolve = json.dumps(evolve_messages(3, parents, DIRECTIONS[0]))
    copy = CandidateRecord(0, 3, "ok", code=parents[1].code, prompt=evolve, duplicate_of=2)
    assert repeats(copy) and not repeats(CandidateRecord(0, 4, "ok", code=parents[1].code))  # new: no repeat
    assert not repeats(CandidateRecord(0, 5, "runtime", code="x", duplicate_of=2))  # failed: a repair's
    chat = revise_messages(3, copy, parents[1].code)
    asked = json.loads(evolve)
    assert chat[:-1] == asked[:-1] and chat[-1]["content"].startswith(asked[-1]["content"])
    assert chat[-1]["content"].endswith(REVISE_NOTE.format(what="Algorithm 2 above"))
    # The paper prompt's example; a function the prompt did not show; none known.
    assert repeated_name(generator_messages(3)[-1]["content"], ONE_SHOT) == "the example above"
    assert repeated_name(asked[-1]["content"], "def merge(task_vectors):\n    return task_vectors[0]\n") == (
        "an algorithm already tried")
    assert repeated_name(asked[-1]["content"], None) == "an algorithm already tried"
