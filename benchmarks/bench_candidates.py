"""Candidates per hour: merging into a loaded model in place vs writing each merge to disk and reloading it.

    python benchmarks/bench_candidates.py [--seed NAME|FOLDER] [--experts F1 F2 F3] [--backend transformers|vllm]
        [--task gsm8k] [--limit 10] [--data-dir ../shared/data] [--max-new-tokens N]
        [--tiny | --mistral-7b-random [--layers 32]] [--out runs/bench/bench_candidates.json]

The same merge functions (task arithmetic 0.3 * sum, a TIES-like trimmed sign consensus, a mean: source strings,
run in the sandbox as generated code is) over the same experts' MLP task vectors, each scored with greedy
decoding on the same first --limit dev problems, in one run:

- in place (what `selfdev discover` does, see selfdev.scoring.CandidateScorer): one backend holds the seed and
  the task vectors are streamed once into the sandbox worker's shared memory (MergeInputs); a first merge starts
  the worker. That is setup, paid once per phase and reported apart. Per candidate: `merge_generated` (merge), the merged MLP
  tensors pushed into the live model with `update_weights` (load), `evaluate` (eval). Nothing is restored: the
  next candidate overwrites the same tensors;
- naive: per candidate `apply_algorithm` (mergekit's run_merge to a folder with a fresh sandbox worker, what
  `selfdev apply` does: merge), a fresh backend loaded from that folder (load), `evaluate` (eval); the folder is
  then deleted.

Reported per candidate: seconds of merge / load / eval. Per path: their means, candidates per hour (3600 / mean
total), and the merge step as GB/s of task vectors read (float32, as merge functions see them), on a CUDA device
also as a fraction of --gpu-bandwidth-gbs (the sandbox merges on the CPU). The ratio in-place / naive is of
candidates per hour. Equality: every candidate's greedy outputs must be identical on both paths (a boolean, and
the first differing example if not). Results go to stdout (a table) and --out (JSON).

Models: by default the seed (the embedded one unless --seed) and three synthetic experts, cached as
`selfdev discover` makes them. --tiny builds a 2-layer Qwen2 and its tokenizer from a config (tests/conftest.py's
builders) and three perturbed experts in a temporary folder: seconds on a CPU, what the test runs.
--mistral-7b-random (GPU machine) writes a Mistral-7B-shaped model (hidden 4096, intermediate 14336, 32 heads,
8 KV heads, vocab 32000) with random bf16 weights and three perturbed experts: timing only. Memory: the in-place
path holds the float32 task vectors (3 experts x 32 layers: 68 GB) and the sandbox worker a staged copy of them,
so on a 128 GiB machine pass --layers 8 (17 GB each); disk: seed and experts take about 4 x 14.5 GB at 32 layers.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from evals.backends.base import SamplingParams
from evals.backends.config import BackendConfig
from evals.backends.registry import load_backend
from evals.backends.vllm_backend import BackendUnavailable, require_vllm
from evals.evaluate import EvalReport, evaluate
from evals.tasks import get_task
from sandbox import SandboxLimits, SandboxWorker
from seeds import DEFAULT_SEED
from seeds.synthetic import synthetic_experts
from seeds.task_vectors import TaskVectors
from selfdev.apply import apply_algorithm
from selfdev.config import SyntheticExperts
from selfdev.merging import DEFAULT_FILTER, MergeInputs, merge_generated

REPO = Path(__file__).resolve().parents[1]
GB = 1e9
MERGE_SEED = 0
MISTRAL_7B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
}
# Tiny experts are perturbed by as much as the weights' own spread, so the merges change the greedy outputs and
# the equality check compares different models (at the default 0.02 most candidates answer as the seed does).
TINY_EXPERT_SCALE = 1.0
# Like bench_merge: generous per-call limits, so a 7B-shaped tensor is never cut off; no spare worker to warm.
LIMITS = SandboxLimits(wall_seconds_per_call=600, cpu_seconds_per_call=1200, spare_worker=False)
CANDIDATES = {
    "bench_task_arithmetic": '''import torch


def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """Task arithmetic: 0.3 times the sum of the task vectors."""
    return 0.3 * torch.stack(task_vectors).sum(dim=0)
''',
    "bench_ties_like": '''import torch


def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """TIES-like: keep each task vector's largest 20% entries, elect a sign per entry, average those agreeing."""
    flat = torch.stack([tv.reshape(-1) for tv in task_vectors])
    magnitude = flat.abs()
    cutoff = magnitude.kthvalue(max(1, int(0.8 * flat.shape[1])), dim=1).values.unsqueeze(1)
    trimmed = torch.where(magnitude >= cutoff, flat, torch.zeros_like(flat))
    elected = torch.sign(trimmed.sum(dim=0))
    agree = ((torch.sign(trimmed) == elected) & (trimmed != 0)).to(flat.dtype)
    merged = (trimmed * agree).sum(dim=0) / agree.sum(dim=0).clamp(min=1.0)
    return merged.reshape(task_vectors[0].shape)
''',
    "bench_mean": '''import torch


def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """The mean of the task vectors."""
    return torch.stack(task_vectors).mean(dim=0)
''',
}


# -- models ----------------------------------------------------------------------------------


def tiny_builders():
    """tests/conftest.py, for its tiny tokenizer and model builders (tests/ is no package, so load the file)."""
    spec = importlib.util.spec_from_file_location("selfdev_test_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_tiny(folder: Path) -> Path:
    """The tests' tiny seed: a 2-layer Qwen2 with random weights and a byte-level BPE, as an HF folder."""
    builders = tiny_builders()
    tokenizer = builders.build_tiny_tokenizer()
    builders.build_tiny_model(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def random_mistral(folder: Path, *, layers: int = 32, shape: dict = MISTRAL_7B) -> Path:
    """A Mistral-shaped HF folder with random bf16 weights, written tensor by tensor (never a whole model in memory).

    The tokenizer is the tests' tiny one, padded with unused tokens to the model's vocabulary.
    """
    from mergekit.io.tensor_writer import TensorWriter
    from transformers import MistralConfig, MistralForCausalLM

    tokenizer = tiny_builders().build_tiny_tokenizer()
    tokenizer.add_tokens([f"<|unused{i}|>" for i in range(len(tokenizer), shape["vocab_size"])])
    config = MistralConfig(
        **{**shape, "num_hidden_layers": layers},
        max_position_embeddings=32768,
        sliding_window=None,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        dtype="bfloat16",
    )
    with torch.device("meta"):
        names = {name: p.shape for name, p in MistralForCausalLM(config).state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    with TensorWriter(str(folder), max_shard_size=2**30) as writer:
        for name, size in names.items():
            if name.endswith("norm.weight"):
                tensor = torch.ones(size, dtype=torch.bfloat16)
            else:
                tensor = torch.empty(size, dtype=torch.bfloat16).normal_(0.0, 0.02, generator=generator)
            writer.save_tensor(name, tensor)
    config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def models(args: argparse.Namespace, work: Path) -> tuple[Path, list[Path], str]:
    """(seed folder, expert folders, what they are) as the command line asks."""
    defaults = SyntheticExperts()
    scale, root = defaults.scale, work / "experts"
    if args.tiny:
        seed, scale = build_tiny(work / "tiny-seed"), TINY_EXPERT_SCALE
        label = "tiny qwen2 (2 layers, hidden 32)"
    elif args.mistral_7b_random:
        seed = random_mistral(work / "mistral-seed", layers=args.layers)
        label = f"random mistral-7b shape, {args.layers} layers, bf16"
    else:
        from seeds.checkpoint import model_folder

        seed, label, root = model_folder(args.seed), args.seed, None  # experts cached where discovery caches them
    if args.experts:
        return seed, [Path(e) for e in args.experts], label
    shard_bytes = defaults.shard_mb * 2**20
    experts = synthetic_experts(seed, defaults.count, scale, filter=DEFAULT_FILTER, shard_bytes=shard_bytes, root=root)
    return seed, experts, label


# -- the two paths ---------------------------------------------------------------------------


def release(backend_name: str) -> None:
    """Free a backend's model once the caller has dropped it, before the next one loads (on a GPU the engine must
    give its memory back)."""
    gc.collect()
    if backend_name == "vllm":
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def row(name: str, times: list[float], report: EvalReport) -> dict:
    merge, load, run = (b - a for a, b in zip(times, times[1:]))
    return {
        "candidate": name,
        "merge_seconds": merge,
        "load_seconds": load,
        "eval_seconds": run,
        "total_seconds": merge + load + run,
        "accuracy": report.accuracy,
        "generated_tokens": report.generated_tokens,
    }


def in_place(args, seed: Path, experts: list[Path], score) -> tuple[dict, dict]:
    """One backend and the task vectors loaded once; per candidate: merge in the sandbox, update_weights, evaluate."""
    setup, rows, outputs = {}, [], {}
    start = time.perf_counter()
    backend = load_backend(str(seed), BackendConfig(name=args.backend))
    setup["load_backend"] = time.perf_counter() - start
    with SandboxWorker(LIMITS) as worker:
        start = time.perf_counter()
        inputs = MergeInputs.load(TaskVectors(seed, experts, DEFAULT_FILTER), worker)
        setup["stage_task_vectors"] = time.perf_counter() - start
        # Starts the worker, which maps the task vectors, as a phase's first candidate does.
        start = time.perf_counter()
        merge_generated(worker, next(iter(CANDIDATES.values())), inputs, seed=MERGE_SEED)
        setup["first_merge"] = time.perf_counter() - start
        for name, code in CANDIDATES.items():
            times = [time.perf_counter()]
            merged, diagnosis = merge_generated(worker, code, inputs, seed=MERGE_SEED)
            if merged is None:
                raise SystemExit(f"bench_candidates: {name} failed: {diagnosis.status.value}: {diagnosis.reason}")
            times.append(time.perf_counter())
            backend.update_weights(merged)
            times.append(time.perf_counter())
            report = score(backend)
            times.append(time.perf_counter())
            rows.append(row(name, times, report))
            outputs[name] = report.records
            del merged
    del backend
    release(args.backend)
    return {"setup_seconds": setup, "candidates": rows}, outputs


def naive(args, seed: Path, experts: list[Path], score, work: Path) -> tuple[dict, dict]:
    """Per candidate: mergekit writes the merged model to disk, a fresh backend loads it, evaluate."""
    rows, outputs = [], {}
    for name, code in CANDIDATES.items():
        algorithm, out = work / f"{name}.py", work / f"merged-{name}"
        algorithm.write_text(code)
        times = [time.perf_counter()]
        apply_algorithm(algorithm, str(seed), [str(e) for e in experts], out, filter=DEFAULT_FILTER, seed=MERGE_SEED)
        times.append(time.perf_counter())
        backend = load_backend(str(out), BackendConfig(name=args.backend))
        times.append(time.perf_counter())
        report = score(backend)
        times.append(time.perf_counter())
        rows.append(row(name, times, report))
        outputs[name] = report.records
        del backend
        release(args.backend)
        shutil.rmtree(out)
    return {"candidates": rows}, outputs


def summarize(path: dict, nbytes: int, gpu: dict | None) -> dict:
    keys = ("merge_seconds", "load_seconds", "eval_seconds", "total_seconds")
    mean = {k: statistics.fmean(r[k] for r in path["candidates"]) for k in keys}
    path.update(mean=mean, candidates_per_hour=3600 / mean["total_seconds"])
    path["merge_gb_per_s"] = nbytes / GB / mean["merge_seconds"]
    if gpu is not None:
        path["merge_fraction_of_gpu_bandwidth"] = path["merge_gb_per_s"] / gpu["peak_bandwidth_gbs"]
    return path


def first_difference(in_place_outputs: dict, naive_outputs: dict) -> dict | None:
    for name, records in in_place_outputs.items():
        for a, b in zip(records, naive_outputs[name], strict=True):
            if a["output"] != b["output"]:
                return {"candidate": name, "id": a["id"], "in_place": a["output"], "naive": b["output"]}
    return None


def table(results: dict) -> str:
    lines = [f"{'path':9} {'candidate':22} {'merge s':>8} {'load s':>8} {'eval s':>8} {'total s':>8}"]
    for label in ("in_place", "naive"):
        path = results[label]
        for r in [*path["candidates"], {"candidate": "mean", **path["mean"]}]:
            lines.append(
                f"{label:9} {r['candidate']:22} {r['merge_seconds']:8.3f} {r['load_seconds']:8.3f} "
                f"{r['eval_seconds']:8.3f} {r['total_seconds']:8.3f}"
            )
    for label in ("in_place", "naive"):
        path = results[label]
        fraction = path.get("merge_fraction_of_gpu_bandwidth")
        bandwidth = f" ({fraction:.2%} of the GPU's bandwidth)" if fraction is not None else ""
        lines.append(
            f"{label}: {path['candidates_per_hour']:.0f} candidates/h, merge {path['merge_gb_per_s']:.3g} GB/s{bandwidth}"
        )
    lines.append(
        f"in-place / naive: {results['ratio_in_place_over_naive']:.2f}x; outputs equal: {results['outputs_equal']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", default=DEFAULT_SEED, help="seed model: embedded name, folder or hub id")
    parser.add_argument("--experts", nargs="+", help="expert folders (default: three synthetic experts of the seed)")
    parser.add_argument("--backend", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--task", default="gsm8k")
    parser.add_argument("--limit", type=int, default=10, help="dev problems per candidate")
    parser.add_argument("--data-dir", default=None, help="local data (default: $SELFDEV_DATA_DIR, else the hub)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: the task's")
    models_group = parser.add_mutually_exclusive_group()
    models_group.add_argument("--tiny", action="store_true", help="a tiny Qwen2 built from a config (CPU, seconds)")
    models_group.add_argument("--mistral-7b-random", action="store_true", help="a random Mistral-7B-shaped model (GPU)")
    parser.add_argument("--layers", type=int, default=32, help="layers of the --mistral-7b-random model")
    parser.add_argument("--gpu-bandwidth-gbs", type=float, default=4800.0, help="peak memory bandwidth (H200: 4800)")
    parser.add_argument("--work-dir", type=Path, default=None, help="for built models and merges (default: temp)")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "bench_candidates.json")
    args = parser.parse_args(argv)

    try:
        if args.backend == "vllm":
            require_vllm()
        if args.mistral_7b_random and not torch.cuda.is_available():
            raise BackendUnavailable("--mistral-7b-random is for a GPU machine and no CUDA GPU is visible")
    except BackendUnavailable as e:
        sys.exit(f"bench_candidates: {e}")
    gpu = None
    if torch.cuda.is_available():
        gpu = {"name": torch.cuda.get_device_name(0), "peak_bandwidth_gbs": args.gpu_bandwidth_gbs}
    task = get_task(args.task)
    examples = task.examples("dev", args.data_dir, args.limit)
    max_new_tokens = args.max_new_tokens or task.max_new_tokens
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0, stop=task.stop)

    def score(backend) -> EvalReport:
        return evaluate(backend, task, examples, progress=False, params=params)

    with tempfile.TemporaryDirectory(dir=args.work_dir, prefix="bench-candidates-") as tmp:
        work = Path(tmp)
        seed, experts, label = models(args, work)
        nbytes = TaskVectors(seed, experts, DEFAULT_FILTER).nbytes()
        fast, fast_outputs = in_place(args, seed, experts, score)
        slow, slow_outputs = naive(args, seed, experts, score, work)
    difference = first_difference(fast_outputs, slow_outputs)
    results = {
        "model": label,
        "experts": len(experts),
        "filter": DEFAULT_FILTER,
        "backend": args.backend,
        "task": task.name,
        "problems": len(examples),
        "max_new_tokens": params.max_new_tokens,
        "task_vector_gb": nbytes / GB,
        "threads": torch.get_num_threads(),
        "gpu": gpu,
        "in_place": summarize(fast, nbytes, gpu),
        "naive": summarize(slow, nbytes, gpu),
    }
    per_hour = results["in_place"]["candidates_per_hour"], results["naive"]["candidates_per_hour"]
    results["ratio_in_place_over_naive"] = per_hour[0] / per_hour[1]
    results["outputs_equal"] = difference is None
    # 1 would make the check vacuous: candidates that all answer alike (as the seed would) cannot tell the paths apart.
    results["distinct_candidate_outputs"] = len({tuple(r["output"] for r in rs) for rs in fast_outputs.values()})
    results["first_difference"] = difference
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
