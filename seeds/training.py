"""What the project's trl trainers share: a LoRA adapter's shape, the optimisation loop, the tokenizer.

`seeds.debate.finetune` (SFT of debate agents) and `selfdev.dpo` (DPO of the
generator) each extend `TrainingSettings` with their own fields and defaults.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-5, gt=0, description="peak learning rate")
    epochs: float = Field(1.0, gt=0, description="passes over the training data")
    batch_size: int = Field(1, ge=1, description="examples per device and step")
    gradient_accumulation: int = Field(1, ge=1, description="steps whose gradients are summed before an update")
    max_length: int = Field(1024, ge=64, description="tokens of prompt plus completion; longer rows are truncated")
    lora_r: int = Field(16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA input")
    target_modules: str | list[str] = Field("all-linear", description="modules that get LoRA adapters")
    bf16: bool = Field(
        True, description="mixed precision (float32 master weights, bf16 autocast) where the device runs bf16 fast: "
        "a GPU that has it, a CPU where evals.backends.dtype measured bf16 matmuls faster than float32",
    )

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
        )

    def trainer_args(self, output_dir: str, *, seed: int, use_cpu: bool) -> dict[str, Any]:
        """Keyword arguments every trl config (SFTConfig, DPOConfig) takes the same way here."""
        return dict(
            output_dir=output_dir,
            learning_rate=self.learning_rate,
            num_train_epochs=self.epochs,
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=self.gradient_accumulation,
            max_length=self.max_length,
            logging_steps=1,
            save_strategy="no",  # the caller saves once, atomically
            report_to=[],
            disable_tqdm=True,  # progress goes through seeds.training_progress, which a piped log shows too
            seed=seed,
            use_cpu=use_cpu,
            bf16=self.bf16 and fast_bf16(use_cpu),
        )


def fast_bf16(cpu: bool) -> bool:
    """Whether this machine's device runs bf16 fast enough to train in it."""
    import torch

    from evals.backends.dtype import resolve_dtype

    if not cpu:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return resolve_dtype("auto", "cpu") == "bfloat16"


def load_tokenizer(path: str):
    """The model's tokenizer, with EOS as padding where it has none (trl pads batches)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
