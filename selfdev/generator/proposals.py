"""Proposal kinds beyond the paper's fixed prompt: `evolve` (parents from the archive) and repair.

- evolve: the prompt shows a few parents drawn from the best of the run so far
  by the one ranking (`selfdev.scores.ranked`), one per fingerprint, none of
  them trivial (a plain mean, one expert alone, zeros), each with its
  search-dev score and n, and asks for an improvement or a recombination
  (FunSearch, OpenEvolve). Every sample gets its own prompt: its own draw of
  parents from the pool and one of a few directions of change (chosen by a
  bandit, selfdev.generator.directions), because one prompt sampled n times gives a small model
  the same few programs n times (AlphaEvolve and OpenEvolve vary the prompt
  per sample for the same reason). Before anything was scored, the scored
  references with code stand in.
- repair: the request a candidate failed (the sandbox refused it or it failed
  when run) is asked again with the sandbox's diagnosis (status, reason, the
  failing line) added (ShinkaEvolve retries failed patches with the error).
  A repair is a candidate of its own, linked to the candidate it repairs.
- revise (with `generator.revise_repeats`): a candidate that ran but repeats a
  function the run had seen (most often a parent the prompt showed) is asked
  again with the note that it adds nothing, in the repair rounds; ShinkaEvolve
  rejects such near-copies before they are evaluated.
"""

from __future__ import annotations

import json
import random
import re
from typing import Callable, Iterable

from sandbox import Diagnosis, Status
from selfdev import scores
from selfdev.generator.directions import DIRECTIONS, in_turn
from selfdev.generator.prompt import generator_messages, messages, reply_ask, task_text
from selfdev.generator.reply import compact
from selfdev.stages import CandidateRecord

# Failures a repair can address: the static gate refused it, it raised, ran out of time or returned a bad tensor.
REPAIRABLE = frozenset(s.value for s in (Status.SYNTAX, Status.POLICY, Status.RUNTIME, Status.TIMEOUT, Status.BAD_OUTPUT))

EVOLVE_ASK = """
Here are algorithms already tried on this problem, best first, with their accuracy on development
problems as accuracy [95% interval] n=problems:

{parents}
Write a new algorithm that scores higher. {direction} Keep what works and make sure it follows the rules.
Do not copy an algorithm above: a copy scores the same.
{reply} with the complete code in one ```python code block, starting with `import torch`.
"""

REPAIR_NOTE = """
An earlier reply to this request failed in the sandbox. {diagnosis}
Do not repeat that mistake: write a version that follows the rules and runs.
"""

REVISE_NOTE = """
An earlier reply to this request computes exactly what {what} computes (the same outputs on every test input),
so it would score the same and adds nothing. Write an algorithm that computes something different.
"""

# A code block the prompt shows, with the label before it ("Algorithm 2 (accuracy ...):" or the paper's example).
_SHOWN = re.compile(r"(Algorithm (\d+) \(accuracy[^\n]*\n)?```python\n(.*?)```", re.DOTALL)

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


def evolve_messages(
    num_experts: int, parents: list[CandidateRecord], direction: str = DIRECTIONS[-1], plan: bool = False
) -> list[dict[str, str]]:
    """The `evolve` proposal: the task, the rules, `parents` with their scores, and a direction of change (`plan`:
    asking for a plan before the code)."""
    shown = "\n".join(
        f"Algorithm {i} (accuracy {p.dev.describe()}):\n```python\n{compact(p.code).rstrip()}\n```\n"
        for i, p in enumerate(parents, 1)
    )
    return messages(task_text(num_experts) + EVOLVE_ASK.format(parents=shown, direction=direction, reply=reply_ask(plan)))


def evolve_prompts(
    num_experts: int, pool: list[CandidateRecord], shown: int, n: int, seed: int, group: int = 1,
    directions: list[int] | None = None, plan: bool = False,
) -> list[list[dict[str, str]]]:
    """`n` evolve prompts: each run of `group` of them shows its own `shown` parents drawn from `pool` (ranked, best
    first; they keep that order), and prompt i the direction of change `directions[i]` (an index into `DIRECTIONS`,
    chosen by selfdev.generator.directions.choose; None: each the next in turn); the same `seed` gives the same
    prompts (a resumed run's). `plan`: each asks for a plan before the code (GeneratorConfig.plan_temperature).

    A run that shares its parents shares its prompt up to the direction, and the generator's backend reads that
    prefix once for the run (evals.backends.transformers_backend.prefix_groups) instead of once per sample.
    """
    if directions is None:
        directions = in_turn(0, n)
    if len(directions) != n:
        raise ValueError(f"{n} evolve prompts need {n} directions, not {len(directions)}")
    rng = random.Random(seed)
    prompts = []
    for i in range(n):
        if i % group == 0:
            picked = sorted(rng.sample(range(len(pool)), min(shown, len(pool))))
        prompts.append(evolve_messages(num_experts, [pool[j] for j in picked], DIRECTIONS[directions[i]], plan))
    return prompts


def diagnosis_text(candidate: CandidateRecord) -> str:
    """Status, reason and the offending line of a failed candidate, as the repair prompt shows them."""
    text = f"{candidate.status}: {candidate.reason or 'no reason given'}"
    lines = (candidate.code or "").splitlines()
    if candidate.line and 0 < candidate.line <= len(lines):
        text += f"\nat line {candidate.line}: `{lines[candidate.line - 1].strip()}`"
    return text


def repair_messages(num_experts: int, failed: CandidateRecord) -> list[dict[str, str]]:
    """The request `failed` answered (its own prompt; the paper prompt if it kept none), with the diagnosis added.

    Not its whole code: shown the failed function and asked for a fixed version, the 0.5B seed writes the same
    function again (1 of 24 ran, four common failures x 6 samples at T 0.8, 2026-12-02, with the diagnosis
    and with the failing line marked; 0 of 48 repairs ran in three bench_generator runs). Asked again with
    the failure named, 18 of the same 24 ran (14 of them the paper prompt's example: asked again, the seed
    retreats to what it was shown). The diagnosis keeps the failing line, which is what a fix needs.
    """
    return _with_note(_request(num_experts, failed), REPAIR_NOTE.format(diagnosis=diagnosis_text(failed)))


def needs_repair(candidate: CandidateRecord) -> bool:
    return candidate.code is not None and candidate.status in REPAIRABLE


def repeats(candidate: CandidateRecord) -> bool:
    """Whether a candidate ran but computes a function the run had seen (a parent shown, the example, an earlier
    reply): its score is inherited, and a revision may find something new."""
    return candidate.code is not None and candidate.executable and candidate.duplicate_of is not None


def _request(num_experts: int, candidate: CandidateRecord) -> list[dict[str, str]]:
    """The chat `candidate` answered (its own prompt; the paper prompt if it kept none)."""
    return json.loads(candidate.prompt) if candidate.prompt else generator_messages(num_experts)


def _with_note(chat: list[dict[str, str]], note: str) -> list[dict[str, str]]:
    *head, last = chat
    return [*head, {**last, "content": last["content"] + note}]


def shown_code(request: str) -> list[str]:
    """The code blocks a request shows (the paper prompt's example, evolve's parents), in order."""
    return [match.group(3) for match in _SHOWN.finditer(request)]


def repeated_name(request: str, original_code: str | None) -> str:
    """How a revision prompt names the function a reply repeated: the algorithm (or example) the request showed
    with that code, else "an algorithm already tried"."""
    if original_code:
        wanted = {original_code.strip(), compact(original_code).strip()}
        for match in _SHOWN.finditer(request):
            if match.group(3).strip() in wanted:
                return f"Algorithm {match.group(2)} above" if match.group(2) else "the example above"
    return "an algorithm already tried"


def ask_again(num_experts: int, candidate: CandidateRecord, original_code: str | None) -> tuple[str, list[dict[str, str]]]:
    """(proposal kind, chat) of a repair round's request for `candidate`: a repair if it failed, else a revision of
    a repeat (`original_code`: the code of the function it repeats, if known)."""
    if candidate.executable:
        return "revise", revise_messages(num_experts, candidate, original_code)
    return "repair", repair_messages(num_experts, candidate)


def revise_messages(num_experts: int, repeat: CandidateRecord, original_code: str | None) -> list[dict[str, str]]:
    """The request `repeat` answered, asked again with the note that its reply repeats a known function, named
    when the request showed it (`original_code`: the code of the function repeated, if known).

    At T 0.6 (2026-12-03, 24 evolve replies, 14 of them a copy of a parent shown), 13 of 14 revisions ran and 4 were
    new functions, against 4 new of the 24 fresh replies; the other 9 copied again. In bench_generator run 10 (48
    evolve replies at T 0.6, AMX) none of 17 revisions was new: the 0.5B seed copies again when told.
    """
    chat = _request(num_experts, repeat)
    return _with_note(chat, REVISE_NOTE.format(what=repeated_name(chat[-1]["content"], original_code)))


def prompt_json(chat: list[dict[str, str]]) -> str:
    """How a prompt is recorded: the chat messages as JSON (what DPO reads back)."""
    return json.dumps(chat)
