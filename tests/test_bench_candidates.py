"""benchmarks/bench_candidates.py: the tiny run (both paths timed, identical greedy outputs) and its Mistral builder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_candidates", REPO / "benchmarks" / "bench_candidates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_times_both_paths_and_their_outputs_match(tmp_path, data_dir):
    bench = load_bench()
    out = tmp_path / "bench.json"
    argv = ["--tiny", "--limit", "2", "--max-new-tokens", "8", "--data-dir", str(data_dir)]
    bench.main([*argv, "--work-dir", str(tmp_path), "--out", str(out)])

    results = json.loads(out.read_text())
    assert results["problems"] == 2 and results["task_vector_gb"] > 0
    for path in ("in_place", "naive"):
        rows = results[path]["candidates"]
        assert [r["candidate"] for r in rows] == list(bench.CANDIDATES)
        for r in rows:
            assert min(r["merge_seconds"], r["load_seconds"], r["eval_seconds"]) > 0, r
        assert results[path]["candidates_per_hour"] > 0 and results[path]["merge_gb_per_s"] > 0
    assert results["ratio_in_place_over_naive"] > 0
    assert results["outputs_equal"] is True, results["first_difference"]
    assert results["first_difference"] is None
    assert results["distinct_candidate_outputs"] > 1, "candidates that answer alike make the equality check vacuous"
    assert not list(tmp_path.glob("bench-candidates-*")), "the work folder is removed"


def test_random_mistral_builder_writes_a_loadable_bf16_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bench = load_bench()
    small = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4, "num_key_value_heads": 2}
    small["vocab_size"] = 512
    folder = bench.random_mistral(tmp_path / "mistral", layers=2, shape={**bench.MISTRAL_7B, **small})

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "mistral" and model.config.num_hidden_layers == 2
    assert model.dtype == torch.bfloat16
    assert model.get_input_embeddings().weight.shape == (512, 64)
    assert len(AutoTokenizer.from_pretrained(folder)) == 512
