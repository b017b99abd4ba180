"""SandboxLimits: every knob of the sandbox in one typed, documented place."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GiB = 1 << 30


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits and probe settings of a SandboxWorker.

    The defaults suit a 7B-class model on CPU; tests and the selfdev loop pass
    tighter values.
    """

    address_space_bytes: int = 8 * GiB
    """Address space a candidate may add on top of the worker's footprint at the
    start of each call. The footprint (torch's own reservations, the mapped task
    vectors and output buffers) is measured per call, so only the candidate's
    own allocations count against this."""

    cpu_seconds_per_call: float = 240.0
    """CPU time of one merge() call, summed over torch's intra-op threads."""

    wall_seconds_per_call: float = 60.0
    """Wall-clock time of one merge() call (one parameter tensor)."""

    wall_seconds_per_model: float = 1800.0
    """Wall-clock time of a whole merge_model() request."""

    wall_seconds_per_probe: float = 10.0
    """Wall-clock time of a whole probe (module load and every synthetic probe shape); each real
    parameter probed besides gets wall_seconds_per_call."""

    kill_grace_seconds: float = 2.0
    """Past a wall limit the worker interrupts the candidate itself; if it is
    stuck inside one long C call, the caller kills the process group this much
    later."""

    startup_seconds: float = 120.0
    """Time a fresh worker may take to import torch and report ready."""

    max_output_chars: int = 10_000
    """Cap on the print() output and warnings kept per request."""

    max_code_chars: int = 100_000
    """Longer sources are rejected by the static gate."""

    probe_shapes: tuple[tuple[int, ...], ...] = ((97,), (16, 24), (40, 7), (192, 320))
    """Shapes of the probe tensors: 1-D, 2-D, non-square, and one parameter-like matrix (61,440
    entries) on which rank-k truncations, top-k selections and size branches behave as on real
    weights (see fingerprint.py); real parameters can be added per probe."""

    probe_k: int = 3
    """Number of task vectors per probe shape."""

    probe_scale: float = 0.01
    """Typical magnitude of the probe task vectors, near real fine-tuning deltas; entries spread
    log-normally around it (about 20x either way), as real deltas' outliers do."""

    fingerprint_digits: int = 3
    """Decimals kept of the probe outputs' projections (cosines) and log2-norms before hashing."""

    task_vector_cache: int = 2
    """Task-vector sets kept staged in shared memory, per entry point (merge_model,
    merge_tensors); the least recently used goes first."""

    spare_worker: bool = True
    """Keep a second, idle worker warmed up, so a killed or crashed worker is
    replaced at once instead of after importing torch again (about a second or
    two, and a few hundred MB of memory, for the idle process)."""

    torch_threads: int | None = None
    """Intra-op threads in the worker; None means the caller's torch.get_num_threads()."""

    def __post_init__(self) -> None:
        positive = (
            "address_space_bytes",
            "cpu_seconds_per_call",
            "wall_seconds_per_call",
            "wall_seconds_per_model",
            "wall_seconds_per_probe",
            "startup_seconds",
            "max_code_chars",
            "probe_k",
            "task_vector_cache",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be > 0, got {getattr(self, name)!r}")
        if self.kill_grace_seconds < 0 or self.max_output_chars < 0:
            raise ValueError("SandboxLimits.kill_grace_seconds and max_output_chars must be >= 0")
        if not self.probe_shapes or any(not s or min(s) < 1 for s in self.probe_shapes):
            raise ValueError("SandboxLimits.probe_shapes must be non-empty shapes of positive sizes")
        if not 1 <= self.fingerprint_digits <= 15:
            raise ValueError("SandboxLimits.fingerprint_digits must be in 1..15")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError("SandboxLimits.torch_threads must be >= 1 or None")
        object.__setattr__(self, "probe_shapes", tuple(tuple(int(d) for d in s) for s in self.probe_shapes))

    # A config file names these fields (`sandbox:` in a discovery config, read by pydantic): none other.
    __pydantic_config__ = {"extra": "forbid"}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["probe_shapes"] = [list(s) for s in self.probe_shapes]
        return data
