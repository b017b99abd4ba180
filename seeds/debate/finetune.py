"""One agent's supervised finetuning: trl's SFTTrainer on its own examples, saved as a full HF folder.

With LoRA the adapter is merged back (`merge_and_unload`), so every expert is
a plain checkpoint with the seed's architecture and dtype: task vectors are
then simply expert minus seed.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

from evals.atomic import replacing
from seeds.debate.config import FinetuneSettings
from seeds.training import load_tokenizer


def finetune(base: str, examples: list[dict], out_dir: Path, settings: FinetuneSettings, seed: int) -> dict:
    """Train `base` on `examples` (conversational prompt/completion rows) and publish the result at `out_dir`.

    Returns the training metrics, also written to `out_dir/train_metrics.json`.
    """
    from datasets import Dataset
    from transformers import AutoConfig, AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from evals.progress import working
    from seeds.training_progress import report_progress

    if not examples:
        raise ValueError(f"no examples to finetune {out_dir.name} on")
    on_gpu = torch.cuda.is_available()
    tokenizer = load_tokenizer(base)
    saved_dtype = AutoConfig.from_pretrained(base).dtype or torch.float32
    # fp32 weights on CPU; bf16 weights on a GPU when asked (a 7B model's fp32 copy plus AdamW will not fit one GPU).
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if settings.bf16 and on_gpu else torch.float32)
    peft_config = settings.lora_config() if settings.method == "lora" else None
    # Only the two training columns: the rest (id, agent, kind) is bookkeeping.
    data = Dataset.from_list([{"prompt": ex["prompt"], "completion": ex["completion"]} for ex in examples])
    with tempfile.TemporaryDirectory(prefix="selfdev-sft-") as scratch:
        args = SFTConfig(
            **settings.trainer_args(scratch, seed=seed, use_cpu=not on_gpu),
            completion_only_loss=True,
            gradient_checkpointing=settings.gradient_checkpointing,
            optim=settings.optim,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config)
        report_progress(trainer, f"SFT {out_dir.name}")
        result = trainer.train()
        log = [row for row in trainer.state.log_history if "loss" in row]
    trained = trainer.model
    with working(f"SFT {out_dir.name}: saving"), replacing(out_dir) as tmp:  # merge and write: ~30 s on 2 cores
        if settings.method == "lora":
            trained = trained.merge_and_unload()
        trained = trained.to(saved_dtype)
        trained.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        metrics = {
            "base": base,
            "examples": len(examples),
            "method": settings.method,
            "train_loss": result.training_loss,
            "steps": result.global_step,
            "seconds": result.metrics.get("train_runtime"),
            "log": log,
        }
        (tmp / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
