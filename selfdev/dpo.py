"""Preference training of the generator: trl's DPOTrainer with a LoRA adapter.

Iteration 0 trains a fresh adapter on the base generator. Later iterations load
the previous adapter as trainable; trl then keeps a frozen copy of it as the
reference model, so each iteration's KL anchor is the previous generator, as in
iterative DPO.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from evals.atomic import replacing, write_json_atomic
from seeds.training import load_tokenizer
from selfdev.config import DPOSettings
from selfdev.preferences import PreferencePair


def load_generator(model_path: str, adapter: Path | None, dtype: torch.dtype = torch.float32):
    """The generator as a plain HF model: base weights with the adapter merged in, if any."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval()


# Tokens of a reply that must fit after the prompt for a pair to teach anything.
MIN_REPLY_TOKENS = 32


def fitting_pairs(model_path: str, pairs: Sequence[PreferencePair], max_length: int) -> list[PreferencePair]:
    """The pairs whose prompt leaves room for a reply within `max_length` tokens.

    trl drops the others silently (their replies would be truncated away); an
    `evolve` prompt carries its parents' code and can be that long.
    """
    tokenizer = load_tokenizer(model_path)
    room = max_length - MIN_REPLY_TOKENS

    def prompt_tokens(prompt: str) -> int:
        text = tokenizer.apply_chat_template(json.loads(prompt), add_generation_prompt=True, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    lengths = {prompt: prompt_tokens(prompt) for prompt in {p.prompt for p in pairs}}
    return [p for p in pairs if lengths[p.prompt] <= room]


def train_dpo(
    model_path: str,
    pairs: Sequence[PreferencePair],
    out_dir: Path,
    settings: DPOSettings,
    previous_adapter: Path | None = None,
    *,
    extra_metrics: dict | None = None,
) -> dict:
    """Train on `pairs`, save the adapter to `out_dir` (atomically) and return the training metrics.

    `extra_metrics` (how the pairs were chosen) are saved with them in dpo_metrics.json.
    """
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from seeds.training_progress import report_progress

    if not pairs:
        raise ValueError("no preference pairs to train on")
    tokenizer = load_tokenizer(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    peft_config = None
    if previous_adapter is not None:
        model = PeftModel.from_pretrained(model, str(previous_adapter), is_trainable=True)
    else:
        peft_config = settings.lora_config()
    data = Dataset.from_list(
        [
            {
                "prompt": json.loads(p.prompt),
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
            for p in pairs
        ]
    )
    with tempfile.TemporaryDirectory(prefix="selfdev-dpo-") as scratch:
        args = DPOConfig(
            **settings.trainer_args(scratch, seed=settings.seed, use_cpu=not torch.cuda.is_available()),
            beta=settings.beta,
            max_steps=settings.max_steps or -1,  # -1: the epochs decide
        )
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config)
        report_progress(trainer, f"DPO {out_dir.parent.name}/{out_dir.name}")
        result = trainer.train()
        log = [row for row in trainer.state.log_history if "loss" in row]
        metrics = {
            "train_loss": result.training_loss, "steps": result.global_step, "pairs": len(pairs),
            "train_seconds": result.metrics.get("train_runtime"),  # the steps alone, without loading the model
            **(extra_metrics or {}),
        }
        metrics["log"] = log
        with replacing(out_dir) as tmp:
            trainer.model.save_pretrained(tmp, selected_adapters=["default"])
            write_json_atomic(tmp / "dpo_metrics.json", metrics)
    return metrics
