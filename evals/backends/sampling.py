"""Temperature and nucleus (top-p) sampling of the next token, fast on CPU for large vocabularies.

transformers' `TopPLogitsWarper` sorts the whole vocabulary of every row at
every step. With Qwen's 152k tokens and the debate's 96 rows that sort costs
about 2.5 s per step on 2 cores, more than the model's forward pass. A
nucleus at top-p 0.9 almost always lies within the few hundred most likely
tokens, so the candidates come from `topk` and only rows whose nucleus is
wider than that fall back to the full sort. The kept set and the distribution
are the warper's (a token stays when the mass of the tokens ranked above it is
below top-p); only the order in which random numbers are drawn differs.
"""

from __future__ import annotations

import torch

# Candidates examined before falling back to a full sort of the row.
TOP_CANDIDATES = 1024


def nucleus_probs(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero all but each row's nucleus (not renormalized): the exact top-p set of a full descending sort."""
    sorted_probs, order = probs.sort(-1, descending=True)
    keep = (sorted_probs.cumsum(-1) - sorted_probs) < top_p
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs * keep)


def sample_next_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator, candidates: int = TOP_CANDIDATES
) -> torch.Tensor:
    """One token per row of `logits` ([rows, vocab]); greedy at temperature 0."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = (logits.float() / temperature).softmax(-1)
    if top_p >= 1.0:
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    k = min(candidates, probs.shape[-1])
    top, index = probs.topk(k, -1)  # sorted, most likely first
    cumulative = top.cumsum(-1)
    kept = top * ((cumulative - top) < top_p)
    picked = index.gather(1, torch.multinomial(kept, 1, generator=generator)).squeeze(1)
    wide = (cumulative[:, -1] < top_p).nonzero().squeeze(1)  # nucleus reaches past the candidates
    if wide.numel():
        picked[wide] = torch.multinomial(nucleus_probs(probs[wide], top_p), 1, generator=generator).squeeze(1)
    return picked
