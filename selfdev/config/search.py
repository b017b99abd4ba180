"""The search's knobs: how the generator proposes, how candidates are scored (cascade), paired (DPO) and trained."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evals.backends.config import DtypeName
from seeds.training import TrainingSettings


class GeneratorConfig(BaseModel):
    """The model that writes merge functions, and how it samples (paper: T 1.2, minus ~0.2 per iteration)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="the generator model; None: a copy of the seed")
    samples_per_iteration: int = Field(12, ge=1, description="replies sampled per iteration")
    max_new_tokens: int = Field(384, ge=16, description="token limit of one reply")
    temperature: float = Field(1.2, gt=0, description="sampling temperature of iteration 0")
    temperature_decay: float = Field(0.2, ge=0, description="subtracted from the temperature every iteration")
    min_temperature: float = Field(0.5, gt=0, description="the decay stops here")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling")
    batch_size: int = Field(12, ge=1, description="replies decoded together")
    dtype: DtypeName = Field(
        "precise", description="the generator carries its DPO adapter merged into its weights, a small update that "
        "bf16 rounding would erase; precise: bfloat16x2 where bf16 is fast (evals.backends.split_precision), "
        "float32 elsewhere",
    )
    mode: Literal["paper", "evolve"] = Field(
        "paper", description="paper: the fixed one-shot prompt; evolve: the prompt shows `parents` of the run's "
        "best, distinct algorithms",
    )
    parents: int = Field(3, ge=1, description="evolve: parents shown in one prompt, drawn from the parent pool")
    parent_pool: int = Field(
        6, ge=1, description="evolve: the run's best scored, distinct, non-trivial algorithms each prompt draws its "
        "parents from",
    )
    shared_parents: int = Field(
        1, ge=1, description="evolve: samples in a row shown the same draw of parents (each with its own direction of "
        "change); their prompts share a prefix that the generator reads once per batch of them (a saving from "
        "`batch_size` up: runs shorter than a batch are decoded with the rest)",
    )
    repair_attempts: int = Field(
        0, ge=0, description="rounds in which a failed candidate is shown with the sandbox's diagnosis and rewritten"
    )
    revise_repeats: bool = Field(
        False, description="in the repair rounds (repair_attempts >= 1), also ask again for a candidate that ran but "
        "repeats a function the run had seen (a parent shown, above all), saying it adds nothing",
    )
    copy_ban: int = Field(
        0, ge=0, description="no reply repeats this many tokens in a row of an algorithm its prompt shows (evolve's "
        "parents, the paper prompt's example), except each one's header (imports, the def merge line) and runs the "
        "rules show (selfdev.generator.copying); 0: off",
    )
    copy_penalty: float = Field(
        float("inf"), gt=0, description="copy_ban: what a token that would continue such a run loses from its logit "
        "before the temperature divides it (inf: it is never sampled; a finite one lets the reply keep copying "
        "where nothing else is likely)",
    )
    copy_ban_tail: int = Field(
        0, ge=0, description="copy_ban: ban only the runs that end in the last this-many lines (not blank) of an "
        "algorithm shown, so a reply may keep a parent's setup, which runs, but not end as it does; 0: runs anywhere",
    )
    plan_temperature: float | None = Field(
        None, gt=0, description="a plan before the code (PlanSearch): the prompt asks for one sentence on what the "
        "algorithm does differently, the sampler draws it at this temperature and then the code, from its opening "
        "fence, at the iteration's temperature; a hot plan varies the idea, a cool code keeps it runnable. None: off",
    )
    reply_start: str = Field(
        "", description="the first lines of every reply, written for the generator, which continues from them "
        "(e.g. selfdev.generator.prompt.STACK_START); the reply keeps them, the prompt stays the request",
    )
    control: bool = Field(
        False, description="control arm: every iteration after DPO also samples as many replies from the generator "
        "without DPO, at the same temperature and prompt, so the effect of DPO is separable from the temperature's",
    )

    @model_validator(mode="after")
    def _copy_ban_length(self) -> "GeneratorConfig":
        if self.copy_ban == 1:
            raise ValueError("generator.copy_ban 1 would ban every token a shown algorithm uses: use 0 (off) or 2 and more")
        if self.copy_ban_tail and not self.copy_ban:
            raise ValueError("generator.copy_ban_tail needs copy_ban (the run length, 2 or more): it says where runs are banned")
        return self

    @model_validator(mode="after")
    def _temperature_not_below_its_floor(self) -> "GeneratorConfig":
        # temperature_at would silently sample iteration 0 at min_temperature instead.
        if self.temperature < self.min_temperature:
            raise ValueError(
                f"generator.temperature {self.temperature:g} is below min_temperature {self.min_temperature:g}, where the "
                "decay stops: set min_temperature too"
            )
        return self

    @model_validator(mode="after")
    def _revisions_need_rounds(self) -> "GeneratorConfig":
        if self.revise_repeats and not self.repair_attempts:
            raise ValueError("generator.revise_repeats needs repair_attempts of 1 or more: revisions are asked in the repair rounds")
        return self

    def temperature_at(self, iteration: int) -> float:
        return max(self.min_temperature, self.temperature - self.temperature_decay * iteration)


class CascadeConfig(BaseModel):
    """Search-dev stages of candidate evaluation: prefixes of one problem list."""

    model_config = ConfigDict(extra="forbid")

    slices: list[int] = Field(default=[20, 50], description="search-dev problems at each stage, increasing")
    alpha: float = Field(
        default=0.1, gt=0, lt=1,
        description="a candidate stops when a one-sided exact McNemar test against the best so far, on the "
        "problems both saw, has p below this",
    )

    @model_validator(mode="after")
    def _increasing(self) -> "CascadeConfig":
        if not self.slices or any(b <= a for a, b in zip(self.slices, self.slices[1:])) or self.slices[0] < 1:
            raise ValueError(f"cascade slices must be positive and increasing, got {self.slices}")
        return self


class PreferenceConfig(BaseModel):
    """Which candidates become DPO pairs (selfdev.preferences)."""

    model_config = ConfigDict(extra="forbid")

    top_fraction: float = Field(default=0.03, gt=0, le=1, description="share of the iteration taken as chosen")
    bottom_fraction: float = Field(default=0.10, gt=0, le=1, description="share of the iteration taken as rejected")
    rejected_failure_share: float = Field(
        default=0.25, ge=0, le=1,
        description="at most this share of the rejected replies are failures (code that never ran); the rest "
        "are the worst scored candidates (failures fill in when too few ran)",
    )
    carry_over: int = Field(default=3, ge=0, description="best candidates of each earlier iteration added as chosen")
    references_as_fallback: bool = Field(
        default=True, description="scored references with code are chosen when no generated candidate was scored"
    )
    chosen_copies: bool = Field(
        default=False, description="replies whose function is a reference's (task arithmetic: the prompt's own "
        "example) may be chosen; with them chosen, DPO taught the embedded generator to copy the example "
        "(executable 0.33 -> 0.92 against the control arm, not one new function)",
    )


class DPOSettings(TrainingSettings):
    """Self-Developing paper defaults: LoRA r 256, lr 1e-6, beta 0.01 (selfdev.dpo)."""

    lora_r: int = Field(default=256, ge=1, description="LoRA rank (paper: 256)")
    lora_alpha: int = Field(default=512, ge=1, description="LoRA scaling numerator")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1, description="dropout on the LoRA input")
    learning_rate: float = Field(default=1e-6, gt=0, description="peak learning rate (paper: 1e-6)")
    beta: float = Field(default=0.01, gt=0, description="DPO's KL weight (paper: 0.01)")
    seed: int = Field(0, description="trainer seed")
    max_steps: int | None = Field(
        default=None, ge=1, description="at most this many optimizer steps per DPO (a random subset of the pairs "
        "when it is fewer than their epochs); a budget plan sets it where the DPO would not fit (selfdev.budget)",
    )

    def steps(self, pairs: int) -> int:
        """Optimizer steps a DPO on `pairs` pairs takes."""
        per_epoch = math.ceil(pairs / (self.batch_size * self.gradient_accumulation))
        full = math.ceil(per_epoch * self.epochs)
        return full if self.max_steps is None else min(full, self.max_steps)
