"""What one DPO step of the generator costs, in units of the budget's probe (selfdev.budget's DPO constants).

The budget plans a run from one measurement: the seed evaluating `budget.probe_problems` search-dev problems
(selfdev.throughput.measure). This runs that measurement and then `selfdev.dpo.train_dpo` on `--pairs` pairs in
the same process, so both share the machine's state, and prints a step's seconds and the load's over the probe's
and over the generator's size against the seed's (Throughput.generator_scale): the figures `DPO_STEP_PROBES` and
`DPO_LOAD_PROBES` stand for.

The pairs are real prompts and replies of the length a run trains on: the `paper` prompt, and the known algorithms
(selfdev.generator.examples) written as replies, each preferred to the next.

    python benchmarks/bench_dpo.py --data-dir ../shared/data [--generator qwen2.5-coder-1.5b-instruct] [--pairs 6]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from itertools import cycle, islice, pairwise
from pathlib import Path

import torch

from seeds import resolve_model
from selfdev.config import DiscoveryConfig
from selfdev.dpo import train_dpo
from selfdev.generator.examples import EXAMPLES
from selfdev.generator.prompt import generator_messages
from selfdev.generator.reply import code_reply
from selfdev.preferences import PreferencePair
from seeds.training import fast_bf16
from selfdev.throughput import measure, parameters


def example_pairs(count: int, num_experts: int = 3) -> list[PreferencePair]:
    prompt = json.dumps(generator_messages(num_experts))
    replies = [code_reply(code) for code in EXAMPLES.values()]
    return [
        PreferencePair(prompt, chosen, rejected, i, i + 1)
        for i, (chosen, rejected) in enumerate(islice(cycle(pairwise(replies + replies[:1])), count))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="local GSM8K/MATH folder (else the hub)")
    parser.add_argument("--config", type=Path, default=Path("configs/embedded.yaml"), help="the run's config: "
                        "its probe, backend and DPO settings")
    parser.add_argument("--generator", default=None, help="the generator (default: the config's, else the seed)")
    parser.add_argument("--pairs", type=int, default=6, help="pairs to train on, one epoch")
    parser.add_argument("--no-bf16", action="store_true", help="train in float32 where bf16 autocast would be used")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_dpo.json"))
    args = parser.parse_args()

    config = DiscoveryConfig.load(args.config)
    if args.generator is not None:
        config = config.model_copy(update={"generator": config.generator.model_copy(update={"model": args.generator})})
    seed = resolve_model(config.seed)
    generator = resolve_model(config.generator.model or config.seed)
    throughput = measure(config, seed, args.data_dir)
    settings = config.dpo.model_copy(update={"epochs": 1.0, **({"bf16": False} if args.no_bf16 else {})})
    pairs = example_pairs(args.pairs)
    with tempfile.TemporaryDirectory(prefix="bench-dpo-") as scratch:
        start = time.perf_counter()
        metrics = train_dpo(generator, pairs, Path(scratch) / "adapter", settings)
        total = time.perf_counter() - start
    steps, train = metrics["steps"], metrics["train_seconds"]
    unit = throughput.eval_seconds * throughput.generator_scale  # a probe, scaled to the generator's size
    result = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "seed": config.seed,
        "generator": config.generator.model or config.seed,
        "generator_parameters": parameters(generator),
        "generator_scale": throughput.generator_scale,
        "probe": {"problems": throughput.problems, "seconds": throughput.eval_seconds, "dtype": throughput.eval_dtype},
        "dpo": {"pairs": len(pairs), "steps": steps, "seconds": total, "train_seconds": train,
                "max_length": settings.max_length, "lora_r": settings.lora_r,
                "bf16": settings.bf16 and fast_bf16(not torch.cuda.is_available())},
        "step_seconds": train / steps,
        "load_seconds": total - train,
        "step_probes": train / steps / unit,
        "load_probes": (total - train) / unit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(
        f"{result['cpu_capability']}, {result['threads']} threads: probe {throughput.eval_seconds:.1f} s "
        f"({throughput.problems} problems, {throughput.eval_dtype}); generator {result['generator']} "
        f"(x{throughput.generator_scale:.2f} the seed): DPO {steps} steps in {train:.1f} s + {total - train:.1f} s "
        f"load -> a step {result['step_probes']:.3f} probes, the load {result['load_probes']:.3f} (scaled)"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
