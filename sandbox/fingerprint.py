"""Probe tensors and the fingerprint of a candidate's outputs on them.

Two candidates with the same fingerprint are taken to be the same algorithm,
and the later one inherits the earlier one's score without being merged or
evaluated, so the fingerprint must separate what merges differently and
join what only differs in float noise (loop vs stack, reordered sums,
float64 inside).

Small synthetic probes alone cannot do the first: a rank-16 truncation is
the identity on a 16 x 24 matrix, a top-384 selection keeps all of a 97-entry
vector, `if t.numel() > 10_000` never fires, `clamp(-0.1, 0.1)` never bites at
scale 0.01. So the default probes include one at a parameter-like size with
heavy-tailed values spanning several orders of magnitude, and a caller with
the real task vectors at hand passes a few real parameters too
(`SandboxWorker.probe(..., task_vectors=...)`, chosen by
`choose_probe_tensors`): on those, two candidates share a fingerprint only
if they merge those real tensors alike.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

# Probe tensors do not depend on the candidate, only on the seed, so
# fingerprints of different candidates are comparable.
_PROBE_SALT = 0x5EED_F1A9
# Spread of the per-entry log-magnitude: entries span about e^(+-2*1.5), 20x
# either way of the scale, so thresholds anywhere in that range cut some of them.
_PROBE_LOG_SPREAD = 1.5


def probe_inputs(shape: Sequence[int], k: int, seed: int, scale: float, index: int) -> list[torch.Tensor]:
    """k correlated task vectors of one shape: a shared direction plus individual noise, heavy-tailed magnitudes."""
    generator = torch.Generator().manual_seed((_PROBE_SALT + 1_000_003 * index + seed) % (2**63))
    shape = tuple(shape)
    common = torch.randn(shape, generator=generator)
    magnitude = torch.exp(_PROBE_LOG_SPREAD * torch.randn(shape, generator=generator)) * scale
    return [(0.5 * common + torch.randn(shape, generator=generator)) * magnitude for _ in range(k)]


def choose_probe_tensors(specs: Sequence[tuple[str, Sequence[tuple[tuple[int, ...], torch.dtype]]]], limit: int = 2) -> list[str]:
    """Names of real parameters worth probing on: the first of each distinct shape, largest shapes first, at most `limit`.

    `specs` is what SandboxWorker.stream_task_vectors takes (TaskVectors.specs()).
    """
    first: dict[tuple[int, ...], str] = {}
    for name, group in specs:
        if group:
            first.setdefault(tuple(group[0][0]), name)
    by_size = sorted(first.items(), key=lambda item: -math.prod(item[0]))
    return [name for _, name in by_size[: max(limit, 0)]]


_SKETCH_DIRECTIONS = 16
_SKETCH_SALT = 0xF1A9_0000
# Outputs up to this many entries are projected whole; larger ones on this
# many fixed, seeded entries, plus statistics of the whole tensor.
SKETCH_ENTRIES = 1 << 16
_CHUNK = 1 << 20


def _whole_statistics(x: torch.Tensor) -> tuple[float, float, float]:
    """(L2 norm, sum, L1 norm) in float64, a chunk at a time so memory stays bounded."""
    squares = total = absolute = 0.0
    flat = x.reshape(-1)
    for start in range(0, flat.numel(), _CHUNK):
        chunk = flat[start : start + _CHUNK].to(torch.float64)
        squares += float(chunk.square().sum())
        total += float(chunk.sum())
        absolute += float(chunk.abs().sum())
    return math.sqrt(squares), total, absolute


def fingerprint(outputs: Sequence[torch.Tensor], digits: int) -> str:
    """Hash of a rounded random-projection sketch of the outputs.

    Each output contributes its shape, log2 of its norm and its cosines with
    16 fixed random directions, all rounded to `digits` decimals (outputs
    above SKETCH_ENTRIES entries: cosines over a fixed sample of that many
    entries, plus the cosine with the all-ones direction and the L1/L2 ratio
    of the whole tensor). Hashing a few projections instead of every entry
    keeps float noise from operation order (sum/len versus mean) from landing
    on the other side of a rounding boundary: with ~1e-7 relative noise, 3
    digits and some 70 hashed numbers, equivalent algorithms collide in about
    99% of cases, while outputs whose direction differs by more than about
    1e-2 radians, or whose norm differs by more than about 0.1%, separate.
    Memory is bounded by the sample size, whatever the output's size.
    """
    scale = 10**digits
    digest = hashlib.sha256()

    def add(values: Sequence[float]) -> None:
        rounded = torch.round(torch.tensor(values, dtype=torch.float64) * scale).to(torch.int64)
        digest.update(rounded.numpy().tobytes())

    for index, out in enumerate(outputs):
        digest.update(repr(tuple(out.shape)).encode())
        numel = out.numel()
        norm, total, absolute = _whole_statistics(out.detach())
        if norm == 0.0 or not math.isfinite(norm):
            digest.update(b"zero" if norm == 0.0 else b"nonfinite")
            continue
        flat = out.detach().reshape(-1)
        generator = torch.Generator().manual_seed(_SKETCH_SALT + index)
        if numel > SKETCH_ENTRIES:
            sample = torch.randint(0, numel, (SKETCH_ENTRIES,), generator=generator)
            x = flat[sample].to(torch.float64)
        else:
            x = flat.to(torch.float64)
        directions = torch.randn(_SKETCH_DIRECTIONS, x.numel(), generator=generator, dtype=torch.float64)
        sample_norm = float(x.norm())
        if sample_norm == 0.0:
            digest.update(b"zero sample")
        else:
            add(((directions @ x) / (directions.norm(dim=1) * sample_norm)).tolist())
        digest.update(round(math.log2(norm) * scale).to_bytes(8, "little", signed=True))
        if numel > SKETCH_ENTRIES:
            root = math.sqrt(numel)
            add([total / (root * norm), absolute / (root * norm)])
    return digest.hexdigest()[:16]
