"""`DebateConfig` and its sections: everything `selfdev experts` needs, validated once when the YAML is read.

Every schema of the debate lives here, beside the runtime modules that take them
(engine: `DebateSettings`, datasets: `DatasetSettings`, finetune:
`FinetuneSettings`, metrics: `EvalSettings`); the backend is evals' one `BackendConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evals.backends.config import backend_config
from seeds.configfile import TaskName, load_yaml_model
from seeds.debate.voting import VoteRule
from seeds.embedded import DEFAULT_SEED
from seeds.errors import SeedError
from seeds.training import TrainingSettings

if TYPE_CHECKING:
    from evals.backends.base import SamplingParams

GENERATOR, CRITIC = "generator", "critic"
ROLES = (GENERATOR, CRITIC)


class DebateConfigError(SeedError):
    """A debate config that cannot be read or does not validate; the message is one line."""


class DebateSettings(BaseModel):
    """The paper's debate: 3 agents, 2 rounds, summarizer on, temperature 1, top-p 0.9, a strict majority labels."""

    model_config = ConfigDict(extra="forbid")

    agents: int = Field(3, ge=1, description="copies of the model that debate")
    rounds: int = Field(2, ge=1, description="round 0 answers alone; each later round sees the others' answers")
    summarize: bool = Field(True, description="a summarizer condenses the others' answers before each later round")
    temperature: float = Field(1.0, ge=0, description="sampling temperature of every answer")
    top_p: float = Field(0.9, gt=0, le=1, description="nucleus sampling")
    max_new_tokens: int = Field(512, ge=8, description="token limit of one answer")
    summary_max_new_tokens: int = Field(256, ge=8, description="token limit of one summary")
    vote: VoteRule = Field(
        "majority", description="how the final round labels a problem: majority (more than half of the agents "
        "agree, else the problem gets no label and no agent trains on it) or plurality (the largest group)",
    )

    def sampling(self, seed: int, *, summary: bool = False) -> SamplingParams:
        from evals.backends.base import SamplingParams  # noqa: F811 (torch, loaded when the debate runs)

        tokens = self.summary_max_new_tokens if summary else self.max_new_tokens
        return SamplingParams(max_new_tokens=tokens, temperature=self.temperature, top_p=self.top_p, seed=seed)

    @model_validator(mode="after")
    def _peers_to_debate(self) -> "DebateSettings":
        if self.rounds > 1 and self.agents < 2:
            raise ValueError("a debate of more than one round needs at least two agents")
        return self


class DatasetSettings(BaseModel):
    """Which debates become finetuning examples (seeds.debate.datasets)."""

    model_config = ConfigDict(extra="forbid")

    right_to_right_probability: float = Field(
        0.5, ge=0, le=1, description="share of a critic's right-to-right debates it trains on (wrong-to-right: all)"
    )


class FinetuneSettings(TrainingSettings):
    """The paper: full finetuning, 2 epochs, lr 1e-5. LoRA (merged back) for machines that cannot afford that."""

    method: Literal["full", "lora"] = Field("full", description="full finetuning, or LoRA merged back into the weights")
    epochs: float = Field(2.0, gt=0, description="passes over an agent's examples")
    max_length: int = Field(2048, ge=64, description="tokens of prompt plus completion; longer rows are truncated")
    optim: str = Field("adamw_torch", description="any transformers optimizer name")
    gradient_checkpointing: bool = Field(False, description="recompute activations: less memory, slower steps")


class EvalSettings(BaseModel):
    """The held-out slice: never the dev split, which discovery selects merges on."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName = Field("gsm8k", description="the task of the held-out problems")
    split: str = Field("test", description="its split: test or train, never dev")
    offset: int = Field(0, ge=0, description="first problem, e.g. past the problems a same-split training slice uses")
    limit: int = Field(40, ge=1, description="held-out problems")
    experts: bool = Field(True, description="each handed-over expert's single-agent accuracy")
    system: bool = Field(False, description="the finetuned system's debate (generators, then critics), as published")
    embeddings: bool = Field(True, description="embedding dissimilarity (loads the small sentence embedder)")

    @field_validator("split")
    @classmethod
    def _not_dev(cls, value: str) -> str:
        if value == "dev":
            raise ValueError("the dev split belongs to discovery; evaluate experts on 'test' (or 'train')")
        return value


class TrainingProblems(BaseModel):
    """One source of training problems: `limit` problems of a task's split from `offset`, in its seeded order."""

    model_config = ConfigDict(extra="forbid")

    task: TaskName = Field(description="the task the problems come from")
    split: str = Field("train", description="its split; never dev")
    offset: int = Field(0, ge=0, description="first problem of the slice")
    limit: int = Field(ge=1, description="problems in the slice")

    @field_validator("split")
    @classmethod
    def _not_dev(cls, value: str) -> str:
        if value == "dev":
            raise ValueError("training on the dev split would leak into discovery's selection; use 'train'")
        return value


class DebateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: str = Field(DEFAULT_SEED, description="embedded seed name, HF folder or hub id")
    train: list[TrainingProblems] = Field(min_length=1, description="slices of training problems the agents debate")
    data_dir: str | None = Field(None, description="local data folder; None: --data-dir, $SELFDEV_DATA_DIR, or the hub")
    iterations: int = Field(1, ge=1, description="iteration l+1 debates with the agents finetuned in iteration l")
    random_seed: int = Field(0, description="seed of sampling and of the critics' example draw")
    handoff: Literal["generators", "critics", "all"] = Field(
        "generators", description="which finetuned agents the merge stage gets"
    )
    critics: bool = Field(
        True, description="critic agents are finetuned as published; false skips them where nothing uses them "
        "(handoff, a later iteration's debate, the system evaluation), which on a CPU saves most of the training time",
    )
    debate: DebateSettings = Field(default_factory=DebateSettings, description="the debate")
    datasets: DatasetSettings = Field(default_factory=DatasetSettings, description="debates to finetuning examples")
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings, description="finetuning of each agent")
    evaluation: EvalSettings = Field(default_factory=EvalSettings, description="the held-out evaluation")
    # The debate generates: vLLM where it runs, bf16 where this machine runs it fast (evals.backends.dtype).
    backend: backend_config(name="auto", batch_size=64, dtype="auto") = Field(
        description="the backend of the debate and its evaluation"
    )

    @model_validator(mode="after")
    def _held_out_is_held_out(self) -> "DebateConfig":
        ev = self.evaluation
        for source in self.train:
            same = source.task == ev.task and source.split == ev.split
            if same and source.offset < ev.offset + ev.limit and ev.offset < source.offset + source.limit:
                raise ValueError(
                    f"evaluation slice {ev.task} {ev.split}[{ev.offset}:{ev.offset + ev.limit}] overlaps the "
                    f"training slice [{source.offset}:{source.offset + source.limit}]; move its offset"
                )
        return self

    @model_validator(mode="after")
    def _skipped_critics_are_unused(self) -> "DebateConfig":
        if not self.critics:
            users = [
                ("handoff", self.handoff != "generators"),
                ("iterations > 1", self.iterations > 1),
                ("evaluation.system", self.evaluation.system),
            ]
            needed = [name for name, uses in users if uses]
            if needed:
                raise ValueError(f"critics: false, but {', '.join(needed)} needs finetuned critics")
        return self

    def trained_roles(self) -> tuple[str, ...]:
        return ROLES if self.critics else tuple(r for r in ROLES if r != "critic")

    def training_fields(self) -> dict[str, Any]:
        """Everything that decides the experts; a finished run folder is reusable only if these match.

        Whether critics are trained is not among them: it adds a stage and changes no generator."""
        return self.model_dump(mode="json", exclude={"evaluation", "backend", "data_dir", "critics"})


def load_debate_config(path: str | Path, overrides: dict[str, Any] | None = None) -> DebateConfig:
    """Read and validate a YAML config; any problem is a DebateConfigError naming the file and field."""
    return load_yaml_model(DebateConfig, path, DebateConfigError, overrides)
