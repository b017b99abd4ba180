"""Proposal kinds beyond the paper's fixed prompt: `evolve` (parents from the archive) and repair.

- evolve: the prompt shows a few parents, the best of the run so far by the one
  ranking (`selfdev.scores.ranked`), one per fingerprint, none of them trivial
  (a plain mean, one expert alone, zeros), each with its search-dev score and
  n, and asks for an improvement or a recombination (FunSearch, OpenEvolve).
  Before anything was scored, the scored references with code stand in.
- repair: a candidate the sandbox refused or that failed when run is shown
  to the generator with the sandbox's diagnosis (status, reason, the line),
  and the generator writes a fixed version (ShinkaEvolve retries failed
  patches with the error). A repair is a candidate of its own, linked to
  the candidate it repairs.
"""

from __future__ import annotations

import json
from typing import Callable, Iterable

from sandbox import Diagnosis, Status
from selfdev import scores
from selfdev.generator.prompt import messages, task_text
from selfdev.stages import CandidateRecord

# Failures a repair can address: the static gate refused it, it raised, ran out of time or returned a bad tensor.
REPAIRABLE = frozenset(s.value for s in (Status.SYNTAX, Status.POLICY, Status.RUNTIME, Status.TIMEOUT, Status.BAD_OUTPUT))

EVOLVE_ASK = """
Here are algorithms already tried on this problem, best first, with their accuracy on development
problems as accuracy [95% interval] n=problems:

{parents}
Write a new algorithm that scores higher: improve the best one, or combine ideas of several. Keep what
works, change what limits it, and make sure it follows the rules. Do not copy an algorithm above: a copy
scores the same; change how the vectors are weighted, what is kept or dropped, or how they are combined.
Reply with the complete code in one ```python code block, starting with `import torch`.
"""

REPAIR_ASK = """
This merge function failed in the sandbox:
```python
{code}```

Diagnosis: {diagnosis}

Write a fixed version that does the same thing within the rules. Reply with the complete code in one
```python code block, starting with `import torch`.
"""

# Merges that change nothing worth evaluating, as source: probed like candidates, their fingerprints mark copies.
TRIVIAL = {
    "mean": "import torch\n\ndef merge(task_vectors):\n    return torch.stack(task_vectors).mean(dim=0)\n",
    "zeros": "import torch\n\ndef merge(task_vectors):\n    return torch.zeros_like(task_vectors[0])\n",
}


def trivial_fingerprints(probe: Callable[[str], Diagnosis], k: int) -> dict[str, str]:
    """fingerprint -> name for a plain mean, zeros and each of the `k` experts alone, probed by `probe` (`Screen.probe`)."""
    sources = dict(TRIVIAL)
    for i in range(k):
        sources[f"expert {i} alone"] = f"def merge(task_vectors):\n    return task_vectors[{i}] + 0.0\n"
    found = {}
    for name, code in sources.items():
        verdict = probe(code)
        if not verdict.ok:
            raise RuntimeError(f"the trivial merge {name!r} failed its probe: {verdict.status.value} {verdict.reason}")
        found.setdefault(verdict.fingerprint, name)
    return found


def select_parents(pool: Iterable[CandidateRecord], k: int, trivial: Iterable[str] = ()) -> list[CandidateRecord]:
    """The best `k` scored candidates with code, one per fingerprint, none trivial, in the run's one ranking."""
    skip = set(trivial)
    parents: list[CandidateRecord] = []
    for c in scores.ranked(c for c in pool if c.code and c.dev is not None and c.duplicate_of is None):
        if c.fingerprint is not None and c.fingerprint in skip:
            continue
        parents.append(c)
        if c.fingerprint is not None:
            skip.add(c.fingerprint)
        if len(parents) == k:
            break
    return parents


def evolve_messages(num_experts: int, parents: list[CandidateRecord]) -> list[dict[str, str]]:
    """The `evolve` proposal: the task, the rules, and `parents` with their scores."""
    shown = "\n".join(
        f"Algorithm {i} (accuracy {p.dev.describe()}):\n```python\n{p.code.rstrip()}\n```\n"
        for i, p in enumerate(parents, 1)
    )
    return messages(task_text(num_experts) + EVOLVE_ASK.format(parents=shown))


def diagnosis_text(candidate: CandidateRecord) -> str:
    """Status, reason and the offending line of a failed candidate, as the repair prompt shows them."""
    text = f"{candidate.status}: {candidate.reason or 'no reason given'}"
    lines = (candidate.code or "").splitlines()
    if candidate.line and 0 < candidate.line <= len(lines):
        text += f"\nat line {candidate.line}: `{lines[candidate.line - 1].strip()}`"
    return text


def repair_messages(num_experts: int, failed: CandidateRecord) -> list[dict[str, str]]:
    code = (failed.code or "").rstrip() + "\n"
    return messages(task_text(num_experts) + REPAIR_ASK.format(code=code, diagnosis=diagnosis_text(failed)))


def needs_repair(candidate: CandidateRecord) -> bool:
    return candidate.code is not None and candidate.status in REPAIRABLE


def prompt_json(chat: list[dict[str, str]]) -> str:
    """How a prompt is recorded: the chat messages as JSON (what DPO reads back)."""
    return json.dumps(chat)
