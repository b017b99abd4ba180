"""Evaluation speed: plain `model.generate` in batches vs the project's cached-prefix backend.

Both score the same GSM8K dev problems with the same 5-shot chat prompts and greedy
decoding in one run; the result (seconds, tokens/s, accuracies, the ratio) is
printed and written to JSON.

    python benchmarks/bench_eval.py --data-dir ../shared/data [--limit 100]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from evals.backends.base import Completion, SamplingParams, render_prompt, truncate_at_stop
from evals.backends.transformers_backend import TransformersBackend
from evals.evaluate import evaluate
from evals.tasks import get_task
from seeds import DEFAULT_SEED, resolve_model


class NaiveGenerateBackend:
    """The baseline: left-padded batches through `model.generate`, nothing reused between batches."""

    name = "naive-generate"

    def __init__(self, path: str, batch_size: int) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.batch_size = batch_size

    @torch.no_grad()
    def generate(self, prompts, params: SamplingParams, *, progress=None) -> list[Completion]:
        out = []
        for start in range(0, len(prompts), self.batch_size):
            texts = [render_prompt(self.tokenizer, p) for p in prompts[start : start + self.batch_size]]
            batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids = self.model.generate(
                **batch,
                max_new_tokens=params.max_new_tokens,
                do_sample=False,
                stop_strings=list(params.stop),
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            for row in ids[:, batch.input_ids.shape[1] :]:
                tokens = [t for t in row.tolist() if t != self.tokenizer.pad_token_id]
                text, _ = truncate_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), params.stop)
                out.append(Completion(text=text, num_tokens=len(tokens), finish_reason="stop"))
            if progress:
                progress(len(texts))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_SEED)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--naive-batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_eval.json"))
    args = parser.parse_args()

    task = get_task("gsm8k")
    examples = task.examples("dev", args.data_dir, args.limit)
    path = resolve_model(args.model)
    results = {}
    for backend in (TransformersBackend(path), NaiveGenerateBackend(path, args.naive_batch_size)):
        report = evaluate(backend, task, examples)
        results[backend.name] = {
            "seconds": round(report.seconds, 1),
            "generated_tokens": report.generated_tokens,
            "tokens_per_second": round(report.tokens_per_second, 2),
            "accuracy": report.accuracy,
            "correct": report.correct,
        }
        print(backend.name, results[backend.name], flush=True)
        del backend
    summary = {
        "model": args.model,
        "task": "gsm8k/dev",
        "n": len(examples),
        "threads": torch.get_num_threads(),
        "results": results,
        "speedup": round(results["naive-generate"]["seconds"] / results["transformers"]["seconds"], 2),
        "accuracy_equal": results["naive-generate"]["correct"] == results["transformers"]["correct"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
