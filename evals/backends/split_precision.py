"""`bfloat16x2`: linear weights kept as two bfloat16 terms, near float32's precision at bfloat16's speed.

A merged model differs from its seed by task vectors of 0.2-0.4% of the weights'
norm; rounding the merged weights to bfloat16 (8 bits of mantissa) keeps only
cos 0.71-0.86 of that difference, so discovery evaluated merges in float32.
On CPUs with bfloat16 units float32 is 3-15x slower than bfloat16. Splitting
each weight into hi = bf16(w) and lo = bf16(w - hi) keeps ~16 bits of
mantissa (the merge survives at cos > 0.999) while both matmuls run in
bfloat16: y = x @ hi.T + x @ lo.T. Activations are bfloat16, as in any bf16
model; they are the same for every candidate, so paired comparisons stay fair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split(value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hi, lo in bfloat16 with hi + lo ~= value (float32)."""
    value = value.float()
    hi = value.to(torch.bfloat16)
    return hi, (value - hi.float()).to(torch.bfloat16)


class SplitLinear(nn.Module):
    """A linear layer whose weight and bias are each held as hi + lo bfloat16 terms."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        hi, lo = split(linear.weight.detach())
        self.register_buffer("weight_hi", hi)
        self.register_buffer("weight_lo", lo)
        if linear.bias is not None:
            bias_hi, bias_lo = split(linear.bias.detach())
            self.register_buffer("bias_hi", bias_hi)
            self.register_buffer("bias_lo", bias_lo)
        else:
            self.bias_hi = self.bias_lo = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_hi, self.bias_hi) + F.linear(x, self.weight_lo, self.bias_lo)

    @torch.no_grad()
    def assign(self, part: str, value: torch.Tensor) -> None:
        """Overwrite the weight or the bias (`part`) in place with a float32 value."""
        hi, lo = split(value)
        getattr(self, f"{part}_hi").copy_(hi)
        getattr(self, f"{part}_lo").copy_(lo)

    def effective(self, part: str = "weight") -> torch.Tensor:
        """The float32 value the two terms stand for."""
        return getattr(self, f"{part}_hi").float() + getattr(self, f"{part}_lo").float()


def split_linears(model: nn.Module) -> dict[str, tuple[SplitLinear, str]]:
    """Cast `model` (loaded in float32) to bfloat16 with every linear layer but the output head split.

    Returns parameter name -> (layer, "weight" | "bias"), so weight updates by
    the model's own parameter names still land (see TransformersBackend.update_weights).
    """
    head = model.get_output_embeddings()
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head]
    names: dict[str, tuple[SplitLinear, str]] = {}
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        layer = SplitLinear(linear)
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
        names[f"{name}.weight"] = (layer, "weight")
        if linear.bias is not None:
            names[f"{name}.bias"] = (layer, "bias")
    # Parameters only: buffers such as the rotary inv_freq stay float32, as a model loaded in bfloat16 keeps them.
    for param in model.parameters():
        param.data = param.data.to(torch.bfloat16)
    return names
