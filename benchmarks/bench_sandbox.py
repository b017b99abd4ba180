"""Sandbox overhead: per call, and over every MLP tensor of a 0.5B-class model.

    python benchmarks/bench_sandbox.py                   # Qwen2.5-0.5B-shaped random MLP tensors
    python benchmarks/bench_sandbox.py --model DIR       # MLP shapes and dtype of an HF safetensors folder
    python benchmarks/bench_sandbox.py --dtype bfloat16 --algorithms ties
    python benchmarks/bench_sandbox.py --like-for-like       # direct with the worker's heap settings too

The full-model figure applies a benign merge function to every MLP tensor
(k synthetic task vectors each) through SandboxWorker.merge_model and runs the
same source directly in this process, and reports sandboxed / direct wall
time. Warm figures are what a discovery run sees for every candidate after
the first: the task vectors are staged once and reused. Results go to a JSON
file and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import SandboxLimits, SandboxWorker, check_source  # noqa: E402
from sandbox.heap import RETAIN_ENV  # noqa: E402

ALGORITHMS = {
    "task_arithmetic": """
import torch

def merge(task_vectors):
    return torch.stack(task_vectors).sum(dim=0) * 0.3
""",
    "ties": """
import torch

def merge(task_vectors):
    stacked = torch.stack(task_vectors)
    magnitude = stacked.abs()
    flat = magnitude.flatten(1)
    keep = max(1, int(flat.shape[1] * 0.2))
    threshold = flat.kthvalue(flat.shape[1] - keep + 1, dim=1).values
    threshold = threshold.view(-1, *([1] * (stacked.dim() - 1)))
    trimmed = torch.where(magnitude >= threshold, stacked, torch.zeros_like(stacked))
    elected = torch.sign(trimmed.sum(dim=0))
    agree = (torch.sign(trimmed) == elected) & (trimmed != 0)
    total = (trimmed * agree).sum(dim=0)
    count = agree.sum(dim=0).clamp(min=1)
    return total / count
""",
    "dare": """
import torch

def merge(task_vectors):
    p = 0.9
    merged = torch.zeros_like(task_vectors[0])
    for tv in task_vectors:
        keep = torch.bernoulli(torch.full_like(tv, 1 - p))
        merged += tv * keep / (1 - p)
    return merged / len(task_vectors)
""",
}

_MLP = re.compile(r"mlp\.(gate_proj|up_proj|down_proj)\.weight$")


def mlp_shapes_from_model(model_dir: Path) -> tuple[list[tuple[str, tuple[int, ...]]], torch.dtype]:
    from safetensors import safe_open

    dtypes = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    shapes, dtype = [], torch.float32
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():
                if _MLP.search(name):
                    sliced = f.get_slice(name)
                    shapes.append((name, tuple(sliced.get_shape())))
                    dtype = dtypes.get(sliced.get_dtype(), torch.float32)
    if not shapes:
        raise SystemExit(f"no MLP weights (mlp.*_proj.weight) found in {model_dir}")
    return shapes, dtype


def qwen05_shapes(layers: int, hidden: int, intermediate: int) -> list[tuple[str, tuple[int, ...]]]:
    shapes = []
    for layer in range(layers):
        prefix = f"model.layers.{layer}.mlp"
        shapes += [
            (f"{prefix}.gate_proj.weight", (intermediate, hidden)),
            (f"{prefix}.up_proj.weight", (intermediate, hidden)),
            (f"{prefix}.down_proj.weight", (hidden, intermediate)),
        ]
    return shapes


def synthetic_task_vectors(
    shapes: list[tuple[str, tuple[int, ...]]], k: int, dtype: torch.dtype, seed: int
) -> dict[str, list[torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: [(torch.randn(shape, generator=generator) * 1e-3).to(dtype) for _ in range(k)] for name, shape in shapes
    }


def direct_function(source: str) -> Any:
    namespace: dict[str, Any] = {"__name__": "direct"}
    exec(compile(source, "<direct>", "exec"), namespace)
    return namespace["merge"]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of this process, or of process `pid` (the sandbox worker)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run_direct(fn: Any, task_vectors: dict[str, list[torch.Tensor]]) -> tuple[float, float, dict[str, torch.Tensor]]:
    """(wall seconds, CPU seconds, outputs) of the function run in this process."""
    cpu, start = cpu_seconds(), time.perf_counter()
    outputs = {}
    with torch.no_grad():
        for name, tensors in task_vectors.items():
            outputs[name] = fn(list(tensors)).to(tensors[0].dtype)
    return time.perf_counter() - start, cpu_seconds() - cpu, outputs


def run_sandboxed(
    worker: SandboxWorker, source: str, task_vectors: dict[str, list[torch.Tensor]]
) -> tuple[float, float, dict[str, torch.Tensor]]:
    """(wall seconds, CPU seconds of caller and worker together, outputs) through the sandbox."""
    worker_pid = worker._state.process.popen.pid
    cpu, worker_cpu, start = cpu_seconds(), cpu_seconds(worker_pid), time.perf_counter()
    merged, diagnosis = worker.merge_model(source, task_vectors)
    wall = time.perf_counter() - start
    if not diagnosis.ok:
        raise SystemExit(f"sandbox refused a benign algorithm: {diagnosis}")
    return wall, cpu_seconds() - cpu + cpu_seconds(worker_pid) - worker_cpu, merged


def per_call_overhead(worker: SandboxWorker, calls: int) -> dict[str, float]:
    source = ALGORITHMS["task_arithmetic"]
    tiny = [torch.randn(64) for _ in range(3)]
    fn = direct_function(source)

    start = time.perf_counter()
    for _ in range(calls):
        check_source(source)
    static_ms = (time.perf_counter() - start) / calls * 1e3

    worker.probe(source)
    start = time.perf_counter()
    for _ in range(calls):
        worker.probe(source)
    probe_ms = (time.perf_counter() - start) / calls * 1e3

    worker.merge_tensors(source, tiny)
    start = time.perf_counter()
    for _ in range(calls):
        worker.merge_tensors(source, tiny)
    sandbox_ms = (time.perf_counter() - start) / calls * 1e3

    start = time.perf_counter()
    for _ in range(calls):
        fn(tiny)
    direct_ms = (time.perf_counter() - start) / calls * 1e3
    return {
        "check_source_ms": static_ms,
        "probe_ms": probe_ms,
        "merge_tensors_tiny_ms": sandbox_ms,
        "direct_tiny_ms": direct_ms,
        "per_call_overhead_ms": sandbox_ms - direct_ms,
    }


def full_model(
    worker: SandboxWorker, task_vectors: dict[str, list[torch.Tensor]], algorithm: str, repeats: int
) -> dict[str, Any]:
    source = ALGORITHMS[algorithm]
    fn = direct_function(source)

    # First call: stages the task vectors (once per set) and checks the result.
    first_s, _, merged = run_sandboxed(worker, source, task_vectors)
    max_diff = None
    if algorithm != "dare":  # DARE draws from different generators in the two runs
        _, _, direct = run_direct(fn, task_vectors)
        max_diff = max(float((merged[n].float() - direct[n].float()).abs().max()) for n in direct)
        del direct
    del merged

    # Alternate the two so drift in machine load hits both alike; every
    # result is dropped before the next run, as a discovery loop would.
    direct_wall, direct_cpu, sandbox_wall, sandbox_cpu = [], [], [], []
    for _ in range(repeats):
        wall, cpu, direct = run_direct(fn, task_vectors)
        direct_wall.append(wall)
        direct_cpu.append(cpu)
        del direct
        wall, cpu, merged = run_sandboxed(worker, source, task_vectors)
        sandbox_wall.append(wall)
        sandbox_cpu.append(cpu)
        del merged
    median = statistics.median
    # Each sandboxed run over the direct run just before it: load on a shared
    # machine drifts over seconds, so adjacent runs compare more fairly than medians.
    paired = [s / d for s, d in zip(sandbox_wall, direct_wall)]
    return {
        "first_call_s": first_s,
        "direct_s": median(direct_wall),
        "sandbox_s": median(sandbox_wall),
        "ratio": median(sandbox_wall) / median(direct_wall),
        "paired_ratio_median": median(paired),
        "best_of_n_ratio": min(sandbox_wall) / min(direct_wall),
        # CPU seconds (caller plus worker for the sandbox) move less with other
        # load on the machine than wall time does.
        "direct_cpu_s": median(direct_cpu),
        "sandbox_cpu_s": median(sandbox_cpu),
        "cpu_ratio": median(sandbox_cpu) / median(direct_cpu),
        "direct_runs_s": direct_wall,
        "sandbox_runs_s": sandbox_wall,
        "max_abs_diff_vs_direct": max_diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="HF folder with *.safetensors; its MLP shapes and dtype are used")
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=896)
    parser.add_argument("--intermediate", type=int, default=4864)
    parser.add_argument("--k", type=int, default=3, help="task vectors per tensor")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="default: the model's, else float32")
    parser.add_argument("--algorithms", default="task_arithmetic,ties,dare")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200, help="calls for the per-call overhead figures")
    parser.add_argument("--threads", type=int, help="torch threads here and in the worker (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path("bench_sandbox.json"))
    parser.add_argument(
        "--like-for-like", action="store_true",
        help="run the direct side with the worker's heap settings too (sandbox.heap.RETAIN_ENV), so the ratio is "
        "the sandbox's own overhead; without it, direct is a default Python process, as a user would run the code",
    )
    args = parser.parse_args()
    if args.like_for_like and any(os.environ.get(k) != v for k, v in RETAIN_ENV.items()):
        # glibc reads its malloc settings once, at start-up: start again with them.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **RETAIN_ENV})

    if args.model:
        shapes, model_dtype = mlp_shapes_from_model(args.model)
    else:
        shapes, model_dtype = qwen05_shapes(args.layers, args.hidden, args.intermediate), torch.float32
    dtype = getattr(torch, args.dtype) if args.dtype else model_dtype
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = set(algorithms) - set(ALGORITHMS)
    if unknown:
        raise SystemExit(f"unknown algorithms: {sorted(unknown)}; choose from {sorted(ALGORITHMS)}")

    load_before = os.getloadavg()
    start = time.perf_counter()
    task_vectors = synthetic_task_vectors(shapes, args.k, dtype, seed=0)
    build_s = time.perf_counter() - start
    numel = sum(t.numel() for tensors in task_vectors.values() for t in tensors[:1])

    if args.threads:
        torch.set_num_threads(args.threads)
    limits = SandboxLimits(
        wall_seconds_per_model=3600.0,
        wall_seconds_per_call=600.0,
        cpu_seconds_per_call=3600.0,
        spare_worker=False,
        torch_threads=args.threads,
    )
    start = time.perf_counter()
    with SandboxWorker(limits) as worker:
        worker.probe(ALGORITHMS["task_arithmetic"])
        startup_s = time.perf_counter() - start
        overhead = per_call_overhead(worker, args.calls)
        results = {name: full_model(worker, task_vectors, name, args.repeats) for name in algorithms}

    report = {
        "setup": {
            "model": str(args.model) if args.model else "synthetic Qwen2.5-0.5B MLP shapes",
            "tensors": len(shapes),
            "elements_per_task_vector": numel,
            "k": args.k,
            "dtype": str(dtype).removeprefix("torch."),
            "repeats": args.repeats,
            "build_task_vectors_s": build_s,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            # The vector ISA torch's kernels use: the direct and sandboxed runs share it.
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            # Other work on the machine moves both timings; the ratio is robust only when this is low.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "direct_heap": "the worker's (RETAIN_ENV)" if args.like_for_like else "glibc defaults",
        },
        "worker_startup_s": startup_s,
        "per_call": overhead,
        "full_model": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    for name, r in results.items():
        print(
            f"{name:16s} direct {r['direct_s']:.2f}s  sandbox {r['sandbox_s']:.2f}s  ratio {r['ratio']:.3f}  "
            f"(paired {r['paired_ratio_median']:.3f}, best-of-{args.repeats} {r['best_of_n_ratio']:.3f})  "
            f"(CPU {r['direct_cpu_s']:.1f}s vs {r['sandbox_cpu_s']:.1f}s, ratio {r['cpu_ratio']:.3f}; medians of {args.repeats})"
        )
    print(f"per-call overhead {overhead['per_call_overhead_ms']:.2f} ms, probe {overhead['probe_ms']:.2f} ms")
    print(f"CPU capability {report['setup']['cpu_capability']}, {report['setup']['torch_threads']} torch threads")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
