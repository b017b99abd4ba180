"""bfloat16x2: two bf16 terms hold a weight to near float32 precision, so a small merge survives; the backend uses it."""

from __future__ import annotations

import torch
from torch import nn

from evals.backends.dtype import resolve_dtype
from evals.backends.split_precision import SplitLinear, split


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def test_a_small_task_vector_survives_the_split_but_not_plain_bf16():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(256, 512, generator=g) * 0.05
    tau = torch.randn(256, 512, generator=g) * 0.05 * 0.003  # 0.3% of the weights' scale, as a task vector
    hi, lo = split(w + tau)
    base_hi, base_lo = split(w)
    effective = (hi.float() + lo.float()) - (base_hi.float() + base_lo.float())
    plain = (w + tau).bfloat16().float() - w.bfloat16().float()
    assert cosine(effective, tau) > 0.999
    assert cosine(plain, tau) < 0.9
    assert float(((hi.float() + lo.float()) - (w + tau)).abs().max()) < 1e-6


def test_split_linear_matches_float32_and_takes_new_weights():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    layer = SplitLinear(linear)
    x = torch.randn(5, 64)
    exact = linear(x)
    assert torch.allclose(layer(x.bfloat16()).float(), exact, atol=3e-2)
    new = torch.randn(32, 64)
    layer.assign("weight", new)
    assert torch.allclose(layer.effective("weight"), new, atol=1e-5)


def test_backend_in_bfloat16x2_holds_float32_weights(tiny_model_dir):
    from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
    from transformers import AutoModelForCausalLM

    backend = TransformersBackend(str(tiny_model_dir), TransformersBackendConfig(dtype="bfloat16x2", batch_size=4))
    reference = dict(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).named_parameters())
    name = next(n for n in backend.split if n.endswith("mlp.up_proj.weight"))
    layer, part = backend.split[name]
    assert torch.allclose(layer.effective(part), reference[name], atol=1e-6)
    assert backend.weight_dtype == torch.float32 and backend.model.dtype == torch.bfloat16
    # The output head is not split; rotary buffers keep float32.
    assert backend.model.get_output_embeddings().weight.dtype == torch.bfloat16
    assert all(b.dtype == torch.float32 for n, b in backend.model.named_buffers() if "inv_freq" in n)
    merged = reference[name] + 1e-4 * torch.randn_like(reference[name])
    backend.update_weights({name: merged})
    assert torch.allclose(layer.effective(part), merged, atol=1e-6)
    from evals.backends.base import SamplingParams

    out = backend.generate(["1 + 1 ="], SamplingParams(max_new_tokens=4, temperature=0.0))
    assert len(out) == 1 and out[0].num_tokens >= 1


def test_precise_means_bfloat16x2_only_where_bfloat16_is_fast(monkeypatch):
    import evals.backends.dtype as dtype

    monkeypatch.setattr(dtype, "resolve_dtype", dtype.resolve_dtype)  # keep the real function
    monkeypatch.setattr(dtype, "_cuda_dtype", lambda: "bfloat16")
    assert resolve_dtype("precise", "cuda") == "bfloat16x2"
    monkeypatch.setattr(dtype, "_cuda_dtype", lambda: "float16")
    assert resolve_dtype("precise", "cuda") == "float32"
    assert resolve_dtype("float32", "cpu") == "float32"
