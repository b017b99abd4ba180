"""The fast nucleus sampler keeps exactly transformers' top-p set and samples its distribution."""

import pytest
import torch
from transformers.generation.logits_process import TopPLogitsWarper

from evals.backends.sampling import nucleus_probs, sample_next_tokens


def warper_kept(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    return torch.isfinite(TopPLogitsWarper(top_p)(None, logits.clone()))


@pytest.mark.parametrize("scale", [0.3, 3.0, 10.0])  # flat to peaked rows
def test_nucleus_is_the_warpers_kept_set(scale):
    logits = torch.randn(16, 500, generator=torch.Generator().manual_seed(1)) * scale
    kept = nucleus_probs(logits.softmax(-1), 0.9) > 0
    assert torch.equal(kept, warper_kept(logits, 0.9))


@pytest.mark.parametrize("candidates", [4, 1024])  # 4: every flat row takes the full-sort fallback
def test_samples_stay_inside_the_nucleus(candidates):
    logits = torch.cat([torch.randn(8, 300) * 0.1, torch.randn(8, 300) * 8])  # flat rows, peaked rows
    kept = warper_kept(logits, 0.9)
    assert kept[:8].sum(-1).min() > candidates or candidates == 1024  # the flat rows do need the fallback
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        tokens = sample_next_tokens(logits, 1.0, 0.9, g, candidates=candidates)
        assert kept[torch.arange(16), tokens].all()


def test_frequencies_match_the_renormalized_nucleus():
    logits = torch.tensor([[2.0, 1.5, 1.0, 0.0, -1.0, -3.0]])
    rows = logits.expand(40_000, -1)
    expected = nucleus_probs((logits / 0.7).softmax(-1), 0.8)[0]
    expected = expected / expected.sum()
    tokens = sample_next_tokens(rows, 0.7, 0.8, torch.Generator().manual_seed(3), candidates=3)
    freq = torch.bincount(tokens, minlength=6).double() / len(tokens)
    assert expected[3:].sum() == 0 and (freq[expected == 0] == 0).all()
    assert torch.allclose(freq, expected.double(), atol=0.01)


def test_temperature_zero_is_argmax_and_top_p_one_samples_everything():
    logits = torch.randn(5, 50, generator=torch.Generator().manual_seed(2))
    assert torch.equal(sample_next_tokens(logits, 0.0, 0.9, torch.Generator()), logits.argmax(-1))
    tokens = sample_next_tokens(torch.zeros(20_000, 3), 1.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.bincount(tokens, minlength=3).min() > 6000
