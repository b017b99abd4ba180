"""Merge throughput (in memory vs mergekit to disk) and the peak memory of `apply`.

    python benchmarks/bench_merge.py [--seed qwen2.5-coder-0.5b-instruct] [--shard-mb 256] [--out runs/bench-merge]

On the embedded seed with three synthetic experts (seeded perturbations of its
MLP weights, written in shards of --shard-mb), all runs merging the MLP weights:

- in memory, generated algorithm: MergeInputs loaded once (timed apart; the task
  vectors are streamed into the sandbox worker's shared memory), then the
  sandbox runs merge() over every tensor and the seed is added back, twice: the
  first call maps the task vectors in the worker, the second (what every later
  candidate of a discovery run costs) reuses them;
- in memory, mergekit's task_arithmetic through `merge_with_method`;
- to disk: `apply_algorithm` (run_merge + the sandboxed method), in a child process
  whose process tree is sampled for RSS, once with the seed as shipped (one file)
  and once with the seed resharded like the experts; and once with mergekit's own
  loader instead of StreamingTensorLoader, to show what the streaming loader buys.

Throughput is GB of task vectors (float32, as merge functions see them) per second.
Peak RSS is reported for the apply process (exact, its VmHWM), its sandbox worker
(sampled) and their sampled sum, as multiples of the largest input shard. Results go to stdout and <out>/bench_merge.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
ALGORITHM = '''import torch
from torch import Tensor


def merge(task_vectors: list[Tensor]) -> Tensor:
    """Sign-consensus mean: keep each entry's agreeing task vectors, average them, halve."""
    stacked = torch.stack(task_vectors)
    majority = torch.sign(stacked.sum(dim=0))
    agree = (torch.sign(stacked) == majority).to(stacked.dtype)
    return 0.5 * (stacked * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)
'''
GB = 1e9


def largest_shard(*folders: Path) -> int:
    from seeds.checkpoint import Checkpoint

    return max(max(Checkpoint(f).shard_sizes().values()) for f in folders)


def in_memory(seed: Path, experts: list[Path], algorithm: Path) -> dict:
    from sandbox import SandboxLimits, SandboxWorker
    from seeds.task_vectors import TaskVectors
    from selfdev.merging import MergeInputs, merge_generated, merge_with_method, read_algorithm

    tv = TaskVectors(seed, experts, "mlp")
    nbytes = tv.nbytes()
    _, code = read_algorithm(algorithm)
    with SandboxWorker(SandboxLimits(wall_seconds_per_call=600, cpu_seconds_per_call=1200)) as worker:
        # The task vectors are streamed into the worker's shared memory once, as a discovery phase does.
        start = time.perf_counter()
        inputs = MergeInputs.load(tv, worker)
        load_s = time.perf_counter() - start
        seconds = []
        # The first call also maps the shared memory in the worker and allocates the output; later ones reuse both.
        for _ in range(2):
            start = time.perf_counter()
            merged, diagnosis = merge_generated(worker, code, inputs)
            seconds.append(time.perf_counter() - start)
            if merged is None:
                raise SystemExit(f"benchmark algorithm failed: {diagnosis}")
            del merged
        inputs.close()
    generated_s, warm_s = seconds
    start = time.perf_counter()
    merge_with_method(tv, "task_arithmetic", {"weight": 0.4})
    human_s = time.perf_counter() - start
    return {
        "task_vector_gb": nbytes / GB,
        "tensors": len(tv),
        "load_seconds": load_s,
        "generated_seconds": generated_s,
        "generated_gb_per_s": nbytes / GB / generated_s,
        "generated_with_load_gb_per_s": nbytes / GB / (generated_s + load_s),
        "generated_warm_seconds": warm_s,
        "generated_warm_gb_per_s": nbytes / GB / warm_s,
        "task_arithmetic_seconds": human_s,
        "task_arithmetic_gb_per_s": nbytes / GB / human_s,
    }


CHILD = """
import json, time
from contextlib import nullcontext
import selfdev.apply as apply_module
if {mergekit_loader}:
    apply_module.streaming_loaders = lambda models: nullcontext()
start = time.perf_counter()
apply_module.apply_algorithm({algorithm!r}, {seed!r}, {experts!r}, {out!r})
# VmHWM, not rusage: ru_maxrss survives fork and exec, so it would report the benchmark's own peak.
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({{"seconds": time.perf_counter() - start, "peak": int(status["VmHWM"].split()[0]) * 1024}}))
"""


def to_disk(seed: Path, experts: list[Path], algorithm: Path, nbytes: int, scratch: Path, *, mergekit_loader: bool = False) -> dict:
    """apply in a child process: its own peak from VmHWM, its sandbox worker's and the tree's sampled every 20 ms."""
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        code = CHILD.format(
            mergekit_loader=mergekit_loader,
            algorithm=str(algorithm),
            seed=str(seed),
            experts=[str(e) for e in experts],
            out=str(Path(tmp) / "merged"),
        )
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO)
        process, tree_peak, worker_peak = psutil.Process(child.pid), 0, 0
        while child.poll() is None:
            try:
                workers = [p.memory_info().rss for p in process.children(recursive=True)]
                worker_peak = max([worker_peak, *workers])
                tree_peak = max(tree_peak, process.memory_info().rss + sum(workers))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.02)
        if child.returncode:
            raise SystemExit(f"apply failed with exit code {child.returncode}")
        report = json.loads(child.stdout.read().decode().strip().splitlines()[-1])
    shard = largest_shard(seed, *experts)
    return {
        "loader": "mergekit LazyTensorLoader" if mergekit_loader else "StreamingTensorLoader",
        "seconds": report["seconds"],
        "gb_per_s": nbytes / GB / report["seconds"],
        "largest_input_shard_gb": shard / GB,
        "peak_rss_apply_gb": report["peak"] / GB,
        "peak_rss_apply_x_shard": report["peak"] / shard,
        "peak_rss_sandbox_worker_gb": worker_peak / GB,
        "peak_rss_tree_gb": tree_peak / GB,
        "peak_rss_tree_x_shard": tree_peak / shard,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--shard-mb", type=int, default=256, help="shard size of the synthetic experts and resharded seed")
    parser.add_argument("--scale", type=float, default=0.03)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-merge")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from seeds.checkpoint import model_folder
    from seeds.synthetic import synthetic_experts, write_copy
    from seeds.task_vectors import TaskVectors

    args.out.mkdir(parents=True, exist_ok=True)
    seed = model_folder(args.seed)
    shard_bytes = args.shard_mb * 2**20
    experts = synthetic_experts(args.seed, 3, args.scale, shard_bytes=shard_bytes)
    resharded = args.out / f"seed-{args.shard_mb}mb"
    if not (resharded / "config.json").is_file():
        write_copy(seed, resharded, shard_bytes=shard_bytes)
    algorithm = args.out / "bench_algorithm.py"
    algorithm.write_text(ALGORITHM)
    nbytes = TaskVectors(seed, experts, "mlp").nbytes()

    results = {"seed": args.seed, "shard_mb": args.shard_mb, "in_memory": in_memory(seed, experts, algorithm)}
    print(json.dumps(results["in_memory"], indent=2), flush=True)
    runs = {}
    for label, base, mergekit_loader in (
        ("seed_resharded", resharded, False),
        ("seed_single_file", seed, False),
        ("seed_single_file_mergekit_loader", seed, True),
    ):
        runs[label] = to_disk(base, experts, algorithm, nbytes, args.out, mergekit_loader=mergekit_loader)
        print(label, json.dumps(runs[label], indent=2), flush=True)
    results["to_disk"] = runs
    (args.out / "bench_merge.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out / 'bench_merge.json'}")


if __name__ == "__main__":
    main()
