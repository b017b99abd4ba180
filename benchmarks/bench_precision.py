"""Evaluation speed and agreement by weight precision: float32 (the baseline) against bfloat16x2 and bfloat16.

    python benchmarks/bench_precision.py --problems 8 [--dtypes float32,bfloat16x2,bfloat16]

Each dtype evaluates the same GSM8K dev problems with the embedded seed (greedy);
prints seconds, the speedup over float32 measured in the same run, accuracy,
and how many problems' outcomes agree with float32's. Say which CPU it ran on:
the capability is printed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
from evals.data import resolve_data_dir
from evals.evaluate import evaluate
from evals.tasks import get_task
from seeds import resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--dtypes", default="float32,bfloat16x2,bfloat16")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    task = get_task("gsm8k")
    problems = task.examples("dev", resolve_data_dir(None), args.problems)
    model = resolve_model(args.model)
    rows, baseline = [], None
    for dtype in args.dtypes.split(","):
        backend = TransformersBackend(model, TransformersBackendConfig(dtype=dtype, batch_size=args.batch_size))
        start = time.perf_counter()
        report = evaluate(backend, task, problems, progress=False)
        seconds = time.perf_counter() - start
        outcomes = [r["correct"] for r in report.records]
        baseline = baseline or (seconds, outcomes)
        rows.append({
            "dtype": dtype, "seconds": round(seconds, 1), "speedup_vs_first": round(baseline[0] / seconds, 2),
            "accuracy": report.accuracy, "agree_with_first": sum(a == b for a, b in zip(outcomes, baseline[1])),
            "n": report.n, "tokens_per_second": round(report.tokens_per_second, 1),
        })
        print(json.dumps(rows[-1]), flush=True)
        del backend
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                      "rows": rows}))


if __name__ == "__main__":
    main()
