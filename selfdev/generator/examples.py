"""Known merge algorithms written as the generator writes them: the first parents of an `evolve` run.

With only task arithmetic to look at, a small generator rewrites task arithmetic. These show it the
operations merge methods are built from (trimming by magnitude and sign election as in TIES, random
drop and rescale as in DARE, per-element selection), in the sandbox's dialect. They are prompt
material, scored like the task arithmetic reference so the prompt can show their accuracy; the run's
baselines are mergekit's own implementations (selfdev.merging.baselines), not these.
"""

from __future__ import annotations

from selfdev.generator.prompt import ONE_SHOT

TIES = '''\
import torch

def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """TIES: keep each task vector's largest entries, elect a sign per entry, average the values that agree."""
    keep = 0.2
    trimmed = []
    for tv in task_vectors:
        magnitude = tv.abs().flatten()
        k = max(1, int(keep * magnitude.numel()))
        threshold = torch.topk(magnitude, k).values.min()
        trimmed.append(torch.where(tv.abs() >= threshold, tv, torch.zeros_like(tv)))
    stacked = torch.stack(trimmed)
    sign = torch.sign(stacked.sum(dim=0))
    agree = (torch.sign(stacked) == sign) & (stacked != 0)
    total = torch.where(agree, stacked, torch.zeros_like(stacked)).sum(dim=0)
    return total / agree.sum(dim=0).clamp(min=1)
'''

DARE = '''\
import torch

def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """DARE: drop each entry with probability p, rescale the rest by 1 / (1 - p), add them with a weight."""
    drop = 0.9
    weight = 0.5
    merged = torch.zeros_like(task_vectors[0])
    for tv in task_vectors:
        mask = torch.bernoulli(torch.full_like(tv, 1.0 - drop))
        merged = merged + weight * tv * mask / (1.0 - drop)
    return merged
'''

LARGEST = '''\
import torch

def merge(task_vectors: list[torch.Tensor]) -> torch.Tensor:
    """Per entry, the value of the expert with the largest magnitude, scaled down."""
    scale = 0.5
    stacked = torch.stack(task_vectors)
    index = stacked.abs().argmax(dim=0, keepdim=True)
    return scale * torch.gather(stacked, 0, index).squeeze(0)
'''

# Reference name -> code, in the order they are scored (task arithmetic is the paper prompt's example).
EXAMPLES: dict[str, str] = {
    "task_arithmetic": ONE_SHOT,
    "ties_example": TIES,
    "dare_example": DARE,
    "largest_magnitude_example": LARGEST,
}
