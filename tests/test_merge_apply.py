"""Generated algorithms through the sandbox: in memory, as mergekit methods, exported and applied."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
import yaml
from transformers import AutoConfig, AutoModelForCausalLM
from typer.testing import CliRunner

from sandbox import SandboxWorker
from seeds.compat import IncompatibleModelsError
from seeds.task_vectors import TaskVectors
from selfdev.apply import ApplyError, apply_algorithm, apply_config
from selfdev.archive import Archive
from selfdev.cli import app
from selfdev.merging import AlgorithmError, MergeInputs, merge_generated, using_worker
from selfdev.scores import Evaluation
from selfdev.stages import CandidateRecord

# Uses the seeded generator, so equality also checks that every path draws the same random numbers.
RANDOM_CODE = """import torch

def merge(task_vectors):
    stacked = torch.stack(task_vectors)
    keep = torch.rand(stacked.shape[1:]) < 0.7
    return torch.where(keep, stacked.mean(dim=0), torch.zeros_like(stacked[0])) * 1.5
"""
FAILING_CODE = """def merge(task_vectors):
    if task_vectors[0].shape[0] == 32:
        raise ValueError("no down projections")
    return task_vectors[0]
"""


@pytest.fixture(scope="module")
def worker():
    with SandboxWorker() as w, using_worker(w):
        yield w


def load(folder) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(folder / "model.safetensors")


def test_export_then_apply_reproduces_the_in_memory_merge(tmp_path, tiny_model_dir, tiny_expert_dirs, worker):
    tv = TaskVectors(tiny_model_dir, tiny_expert_dirs)
    expected, diagnosis = merge_generated(worker, RANDOM_CODE, MergeInputs.load(tv), seed=7)
    assert diagnosis.ok

    with Archive(tmp_path / "run" / "archive.sqlite") as archive:  # a discovery run's archive, as the loop writes it
        archive.set_meta("seed", str(tiny_model_dir))
        archive.set_meta("experts", [str(e) for e in tiny_expert_dirs])
        dev = Evaluation.of(["p0", "p1"], [True, False])
        archive.add(CandidateRecord(1, 0, "ok", code=RANDOM_CODE, fingerprint="0123456789abcdef", dev=dev))
    cli = CliRunner()
    result = cli.invoke(app, ["export", "--run", str(tmp_path / "run"), "--top", "1", "--out", str(tmp_path / "exported")])
    assert result.exit_code == 0, result.output
    algorithm = tmp_path / "exported" / "selfdev_0123456789ab.py"
    experts = [str(e) for e in tiny_expert_dirs]
    args = ["apply", "--algorithm", str(algorithm), "--base", str(tiny_model_dir), "--experts", *experts]
    result = cli.invoke(app, [*args, "--seed", "7", "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output

    merged, seed = load(tmp_path / "merged"), load(tiny_model_dir)
    assert set(merged) == set(seed)
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, expected.get(name, seed[name]), atol=1e-6, rtol=0)
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path / "merged"), torch.nn.Module)

    # The exported mergekit YAML, pointed at the tiny models, gives the same weights (seed 0 there).
    config = yaml.safe_load((tmp_path / "exported" / "selfdev_0123456789ab.yaml").read_text())
    config["parameters"]["seed"] = 7
    (tmp_path / "exported" / "tiny.yaml").write_text(yaml.safe_dump(config))
    apply_config(tmp_path / "exported" / "tiny.yaml", tmp_path / "from-yaml")
    assert all(torch.equal(t, merged[n]) for n, t in load(tmp_path / "from-yaml").items())


def test_streaming_loader_matches_mergekits_own(tmp_path, tiny_model_dir, tiny_expert_dirs):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    config = {
        "merge_method": "ties",
        "base_model": str(tiny_model_dir),
        "models": [{"model": str(e)} for e in tiny_expert_dirs],
        "parameters": {"weight": 0.4, "density": 0.5},
    }
    (tmp_path / "ties.yaml").write_text(yaml.safe_dump(config))
    apply_config(tmp_path / "ties.yaml", tmp_path / "streamed", shard_bytes=30_000)
    assert (tmp_path / "streamed" / "model.safetensors.index.json").is_file()
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "plain"), MergeOptions(quiet=True))
    streamed = {}
    for shard in (tmp_path / "streamed").glob("*.safetensors"):
        streamed.update(safetensors.torch.load_file(shard))
    plain = load(tmp_path / "plain")
    assert set(streamed) == set(plain) and all(torch.equal(streamed[n], plain[n]) for n in plain)


def test_failing_algorithm_is_one_line_error(tmp_path, tiny_model_dir, tiny_expert_dirs, worker):
    algorithm = tmp_path / "fails_on_down.py"
    algorithm.write_text(FAILING_CODE)
    with pytest.raises(AlgorithmError, match=r"fails_on_down' failed on model.layers.0.mlp.down_proj.weight: runtime"):
        apply_algorithm(algorithm, str(tiny_model_dir), [str(e) for e in tiny_expert_dirs], tmp_path / "out")
    assert not (tmp_path / "out").exists()

    args = ["apply", "--algorithm", str(algorithm), "--base", str(tiny_model_dir), "--experts", str(tiny_expert_dirs[0])]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "error: merge method" in result.output


def test_apply_refuses_bad_inputs(tmp_path, tiny_model_dir, tiny_expert_dirs):
    algorithm = tmp_path / "mean.py"
    algorithm.write_text(RANDOM_CODE)
    experts = [str(e) for e in tiny_expert_dirs]
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("keep me")
    with pytest.raises(ApplyError, match="not empty"):
        apply_algorithm(algorithm, str(tiny_model_dir), experts, occupied)
    with pytest.raises(ApplyError, match="unknown filter"):
        apply_algorithm(algorithm, str(tiny_model_dir), experts, tmp_path / "o", filter="mpl")

    other = tmp_path / "other"
    other.mkdir()
    narrow = AutoConfig.from_pretrained(tiny_model_dir)
    narrow.intermediate_size = 48
    AutoModelForCausalLM.from_config(narrow).save_pretrained(other)
    with pytest.raises(IncompatibleModelsError, match="model.layers.0.mlp.down_proj.weight"):
        apply_algorithm(algorithm, str(tiny_model_dir), [experts[0], str(other)], tmp_path / "o")

    (tmp_path / "unknown.yaml").write_text(yaml.safe_dump({"merge_method": "nonesuch", "base_model": str(tiny_model_dir), "models": []}))
    with pytest.raises(ApplyError, match="'nonesuch' is not a mergekit method"):
        apply_config(tmp_path / "unknown.yaml", tmp_path / "o")
