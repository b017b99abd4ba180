"""Task vectors, filters, and the errors for experts that do not fit the seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

from seeds.checkpoint import CheckpointTensors
from seeds.compat import IncompatibleModelsError
from seeds.errors import SeedError
from seeds.filters import parse_filter
from seeds.synthetic import Perturbation, write_copy
from seeds.task_vectors import TaskVectors


def variant(src: Path, dst: Path, tensors=None, config=None, tokenizer=None) -> Path:
    """A copy of model folder `src` with its tensors, config or tokenizer.json edited in place."""
    shutil.copytree(src, dst)
    if tensors:
        state = safetensors.torch.load_file(dst / "model.safetensors")
        tensors(state)
        safetensors.torch.save_file(state, dst / "model.safetensors", metadata={"format": "pt"})
    for name, edit in (("config.json", config), ("tokenizer.json", tokenizer)):
        if edit:
            data = json.loads((dst / name).read_text())
            edit(data)
            (dst / name).write_text(json.dumps(data))
    return dst


def test_vectors_are_expert_minus_seed(tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(tiny_model_dir, tiny_expert_dirs)
    name = "model.layers.1.mlp.down_proj.weight"
    seed = safetensors.torch.load_file(tiny_model_dir / "model.safetensors")[name]
    expert = safetensors.torch.load_file(tiny_expert_dirs[2] / "model.safetensors")[name]
    vectors = tv.vectors(name)
    assert len(vectors) == 3 and vectors[0].dtype == torch.float32
    assert torch.equal(vectors[2], expert - seed)
    assert tv.nbytes() == sum(3 * 4 * tv.seed.get(n).numel() for n in tv.names)


@pytest.mark.parametrize(
    "spec, count, must, must_not",
    [
        ("mlp", 6, "model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight"),
        ("all-linear", 14, "model.layers.1.self_attn.o_proj.weight", "lm_head.weight"),
        ("all", 27, "model.norm.weight", None),
        (r"re:layers\.1\..*_proj\.weight$", 7, "model.layers.1.mlp.gate_proj.weight", "model.layers.0.mlp.gate_proj.weight"),
    ],
)
def test_filters(tiny_model_dir, tiny_expert_dirs, spec, count, must, must_not):
    names = TaskVectors(tiny_model_dir, tiny_expert_dirs, spec).names
    assert len(names) == count and must in names and must_not not in names


def test_bad_filters(tiny_model_dir, tiny_expert_dirs):
    with pytest.raises(ValueError, match="unknown filter 'mpl'"):
        parse_filter("mpl")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        parse_filter("re:(")
    with pytest.raises(SeedError, match="selects no tensor"):
        TaskVectors(tiny_model_dir, tiny_expert_dirs, "re:no_such_tensor")


def _reshape(state):
    for layer in (1, 0):  # two layers differ; the message must name the first in layer order
        state[f"model.layers.{layer}.mlp.up_proj.weight"] = torch.zeros(48, 32)


@pytest.mark.parametrize(
    "edit, message",
    [
        (dict(tensors=_reshape), r"tensor 'model.layers.0.mlp.up_proj.weight' has shape \[48, 32\] in the expert and \[64, 32\]"),
        (dict(tensors=lambda s: s.pop("model.layers.0.self_attn.q_proj.bias")), "tensor 'model.layers.0.self_attn.q_proj.bias' is missing"),
        (dict(tensors=lambda s: s.update(extra=torch.zeros(2))), "tensor 'extra' is in the expert but not in the seed"),
        (dict(config=lambda c: c.update(model_type="llama", architectures=["LlamaForCausalLM"])), "architecture llama/LlamaForCausalLM"),
        (dict(config=lambda c: c.update(vocab_size=c["vocab_size"] + 8)), "vocab_size"),
        (dict(tokenizer=lambda t: t["model"]["vocab"].update({"zzz": t["model"]["vocab"].pop("The")})), "token 'The'"),
    ],
)
def test_mismatch_names_first_difference(tmp_path, tiny_model_dir, tiny_expert_dirs, edit, message):
    bad = variant(tiny_expert_dirs[1], tmp_path / "bad", **edit)
    with pytest.raises(IncompatibleModelsError, match=message) as error:
        TaskVectors(tiny_model_dir, [tiny_expert_dirs[0], bad], "all")
    assert str(bad) in str(error.value)


def test_vocabulary_matters_only_when_merged(tmp_path, tiny_model_dir, tiny_expert_dirs):
    # The paper's experts differ from the seed by a few added tokens; an MLP-only merge never reads those rows.
    def grow_vocab(state):
        for name in ("model.embed_tokens.weight", "lm_head.weight"):
            state[name] = torch.cat([state[name], torch.zeros(2, 32)])

    bad = variant(tiny_expert_dirs[1], tmp_path / "bad", tensors=grow_vocab, config=lambda c: c.update(vocab_size=c["vocab_size"] + 2))
    assert len(TaskVectors(tiny_model_dir, [bad], "mlp")) == 6
    with pytest.raises(IncompatibleModelsError, match="vocab_size"):
        TaskVectors(tiny_model_dir, [bad], "all")


def test_missing_folder_and_no_experts(tmp_path, tiny_model_dir):
    with pytest.raises(SeedError, match="does not exist"):
        TaskVectors(tiny_model_dir, [tmp_path / "nope"])
    with pytest.raises(SeedError, match="at least one expert"):
        TaskVectors(tiny_model_dir, [])


def test_synthetic_expert_is_sharded_and_perturbs_only_selected(tmp_path, tiny_model_dir):
    out = write_copy(tiny_model_dir, tmp_path / "exp", perturbation=Perturbation(seed=1, scale=0.1), shard_bytes=20_000)
    assert (out / "model.safetensors.index.json").is_file() and (out / "tokenizer.json").is_file()
    tv = TaskVectors(tiny_model_dir, [out], "all")
    changed = {n for n in tv.names if tv.vectors(n)[0].abs().max() > 0}
    assert changed == set(TaskVectors(tiny_model_dir, [out], "mlp").names)


def test_checkpoint_tensors_read_the_selected_tensors_from_disk_each_time(tiny_model_dir, tiny_expert_dirs):
    tv = TaskVectors(tiny_model_dir, tiny_expert_dirs)
    stored = safetensors.torch.load_file(Path(tiny_model_dir) / "model.safetensors")
    base = CheckpointTensors(tv.seed, tv.names)
    assert list(base) == tv.names and len(base) == len(tv.names)
    first = base[tv.names[0]]
    assert torch.equal(first, stored[tv.names[0]])
    first.zero_()  # a caller's edit never reaches the next read
    assert torch.equal(base[tv.names[0]], stored[tv.names[0]])
    unselected = next(name for name in tv.seed.names if name not in tv.names)
    with pytest.raises(KeyError):
        base[unselected]
    with pytest.raises(KeyError, match="no tensor 'nope'"):
        CheckpointTensors(tv.seed, ["nope"])
