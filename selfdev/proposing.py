"""What the generator is asked, per iteration: the prompt of the run's proposal mode, its arms, and repairs.

- `paper` mode asks with the fixed one-shot prompt; `evolve` with parents drawn
  from the run's best distinct, non-trivial algorithms so far, a prompt of its
  own per sample (selfdev.generator.proposals), and a direction of change drawn
  by a bandit from what paid so far (selfdev.generator.directions). The prompts
  are built once per iteration, from the archive as it stands when sampling
  starts, and every sample records its own.
- The `main` arm samples with the latest DPO adapter; with `generator.control`,
  a `control` arm samples as many replies from the generator without DPO, at
  the same temperature, prompt and seed, so the two differ only by DPO.
- Repair round r takes the candidates of round r-1 (round 0: the samples) that
  failed in a way a fix can address and asks the generator of their arm for a
  fixed version, one reply each (with `generator.revise_repeats`, also those
  that ran but repeat a known function, for a different one); their sample
  indices are r * n + the parent's index within its round, so a resumed run
  finds them again.

Every round's samples are written before they are evaluated, so a resumed run
evaluates exactly the replies it sampled before the crash.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from sandbox import Diagnosis
from selfdev.archive import Archive
from selfdev.config import GeneratorConfig
from selfdev.generator import directions
from selfdev.generator.prompt import generator_messages
from selfdev.stages import CandidateRecord, Sample
from selfdev.generator.proposals import (
    evolve_prompts,
    needs_repair,
    prompt_json,
    ask_again,
    repeats,
    select_parents,
    trivial_fingerprints,
)
from selfdev.generator.sampler import Chat, read_samples, sample_replies, write_samples
from selfdev.progress import LoopProgress
from selfdev.run_dir import RunDir

Log = Callable[[str], None]


class Proposer:
    def __init__(
        self, config: GeneratorConfig, generator_path: str, run: RunDir, archive: Archive, *, seed: int, log: Log
    ) -> None:
        self.config, self.generator_path, self.run, self.archive = config, generator_path, run, archive
        self.seed, self.log = seed, log
        self.trivial: dict[str, str] = {}  # fingerprint -> name of a trivial merge (filled by `know_trivial`)

    def know_trivial(self, probe: Callable[[str], Diagnosis], probe_k: int) -> None:
        """Probe the trivial merges once as the screen probes (`Screen.probe`), so parents skip their fingerprints."""
        if not self.trivial:
            self.trivial = trivial_fingerprints(probe, probe_k)

    def prompts(self, num_experts: int, n: int, seed: int) -> tuple[str, list[Chat]]:
        """The proposal kind and the prompts of `n` new samples, from the archive as it is now."""
        plan = self.config.plan_temperature is not None
        if self.config.mode == "paper":
            return "paper", [generator_messages(num_experts, plan)] * n
        candidates = self.archive.candidates(kind=None)
        pool = select_parents(candidates, self.config.parent_pool, self.trivial)
        if not pool:
            return "evolve", [generator_messages(num_experts, plan)] * n
        history = directions.records(candidates, self.paid)
        chosen = directions.choose(history, n, seed)
        config = self.config
        return "evolve", evolve_prompts(num_experts, pool, config.parents, n, seed, config.shared_parents, chosen, plan)

    def paid(self, candidate: CandidateRecord) -> bool:
        """Whether a sample gave discovery something to score: it ran, and computes a function neither trivial nor
        seen before in the run (its score was not inherited from an earlier candidate or reference)."""
        return directions.pays(candidate, lambda c: c.duplicate_of is not None or c.fingerprint in self.trivial)

    def arms(self, iteration: int) -> list[tuple[str, Path | None]]:
        adapter = self.run.latest_adapter(iteration)
        arms = [("main", adapter)]
        if self.config.control and adapter is not None:
            arms.append(("control", None))
        return arms

    def samples(self, iteration: int, num_experts: int, n: int | None = None) -> list[Sample]:
        """The iteration's samples, `n` per arm (default: generator.samples_per_iteration), or those written before."""
        path = self.run.samples(iteration)
        cached = read_samples(path)
        if cached is not None:  # samples written before samples kept their prompt were asked the paper prompt
            paper = prompt_json(generator_messages(num_experts))
            return [s if s.prompt else replace(s, prompt=paper) for s in cached]
        temperature = self.config.temperature_at(iteration)
        n, seed = n or self.config.samples_per_iteration, self.seed * 1000 + iteration
        proposal, chats = self.prompts(num_experts, n, seed)
        samples = []
        for arm, adapter in self.arms(iteration):  # every arm answers the same prompts
            self.log(f"iteration {iteration}: sampling {n} algorithms ({proposal}, {arm} arm) at T={temperature:.2f}")
            with LoopProgress.simple(f"sampling iteration {iteration} ({arm})", n) as advance:
                replies = sample_replies(
                    self.generator_path, adapter, chats, self.config, temperature=temperature, seed=seed,
                    progress=advance,
                )
            samples += [
                Sample(text, prompt_json(chat), proposal, arm, tokens=tokens)
                for chat, (text, tokens) in zip(chats, replies)
            ]
        write_samples(path, samples)
        return samples

    def repairs(self, iteration: int, round_: int, width: int, num_experts: int) -> list[tuple[int, Sample]]:
        """(sample index, sample) of repair round `round_` (from 1); `width`: the iteration's sample count."""
        path = self.run.repairs(iteration, round_)
        cached = read_samples(path)
        if cached is None:
            failed = [
                c for c in self.archive.candidates(iteration)
                if (round_ - 1) * width <= c.sample_index < round_ * width
                and (needs_repair(c) or (self.config.revise_repeats and repeats(c)))
            ]
            cached = self._sample_repairs(iteration, round_, failed, num_experts) if failed else []
            write_samples(path, cached)
        parents = {c.id: c.sample_index % width for c in self.archive.candidates(iteration)}
        return [(round_ * width + parents[s.parent_id], s) for s in cached]

    def _sample_repairs(self, iteration: int, round_: int, failed: list[CandidateRecord], num_experts: int) -> list[Sample]:
        temperature = self.config.temperature_at(iteration)
        adapters = dict(self.arms(iteration))
        samples = []
        for arm in sorted({c.arm for c in failed}):
            group = sorted((c for c in failed if c.arm == arm), key=lambda c: c.sample_index)
            kinds, chats = zip(*(self._ask_again(num_experts, c) for c in group))
            self.log(f"iteration {iteration}: repair round {round_}, {len(group)} failed or repeated candidates ({arm} arm)")
            with LoopProgress.simple(f"repairing iteration {iteration}, round {round_}", len(group)) as advance:
                replies = sample_replies(
                    self.generator_path, adapters.get(arm), chats, self.config, temperature=temperature,
                    seed=self.seed * 1000 + iteration + 100 * round_, progress=advance,
                )
            samples += [
                Sample(text, prompt_json(chat), kind, arm, parent_id=c.id, tokens=tokens)
                for c, kind, chat, (text, tokens) in zip(group, kinds, chats, replies)
            ]
        return samples

    def _ask_again(self, num_experts: int, candidate: CandidateRecord) -> tuple[str, Chat]:
        """A repair of a failed candidate, or a revision of one that repeats a known function."""
        original = self.archive.get(candidate.duplicate_of) if candidate.duplicate_of is not None else None
        return ask_again(num_experts, candidate, original.code if original else None)
