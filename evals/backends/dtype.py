"""`dtype: auto`: bfloat16 where this machine runs it fast, float32 where it does not; decided once per process.

On a CPU the decision is measured: a 96x896x4864 matmul (a decode batch of 96
rows through a 0.5B Qwen's MLP projection) is timed in float32 and in
bfloat16, and bfloat16 is chosen only when it runs at least
`BF16_MIN_SPEEDUP` times as fast. Measured on 2 cores: an AMD EPYC with
avx512_bf16 ran bf16 at ~3x float32's rate; the same machine limited to AVX2
(`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`), like an AVX2-only CPU,
ran it at ~1/16. torch's `get_cpu_capability()` is logged but cannot decide:
it reads "AVX512" on CPUs with and without bf16 units alike. On a GPU:
bfloat16 where the device supports it, else float16.

`auto` is for generation (the debate, `selfdev eval`). Merging and the
evaluation of merged models keep float32: a task vector is 0.2-0.4% of its
weights' norm, and bf16 rounding of the merged weights would erase most of it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Literal

import torch

from evals.progress import note

Device = Literal["cpu", "cuda"]
MATMUL_SHAPE = (96, 896, 4864)  # rows, hidden, intermediate
BF16_MIN_SPEEDUP = 1.5  # below this bf16's precision is not worth its gain


def matmul_gflops(dtype: torch.dtype, shape: tuple[int, int, int] = MATMUL_SHAPE, seconds: float = 0.25) -> float:
    """This process's matmul rate in `dtype` (GFLOP/s) at its current torch thread count, timed for ~`seconds`.

    A dtype so slow that one warm-up product takes `seconds` is rated by that product alone, so a machine
    without bf16 units spends well under a second finding out.
    """
    m, k, n = shape
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(dtype)
    b = torch.randn(k, n, generator=generator).to(dtype)
    flop = 2.0 * m * k * n
    start = time.perf_counter()
    a @ b
    warm = time.perf_counter() - start
    if warm >= seconds:
        return flop / warm / 1e9
    reps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or reps == 0:
        a @ b
        reps += 1
    return flop * reps / elapsed / 1e9


@dataclass(frozen=True)
class CpuDtypeChoice:
    """What `auto` means on this CPU, and the figures it was decided on."""

    capability: str  # torch.backends.cpu.get_cpu_capability(): DEFAULT, AVX2, AVX512, ...
    threads: int
    float32_gflops: float
    bfloat16_gflops: float

    @property
    def speedup(self) -> float:
        return self.bfloat16_gflops / self.float32_gflops

    @property
    def dtype(self) -> str:
        return "bfloat16" if self.speedup >= BF16_MIN_SPEEDUP else "float32"

    def describe(self) -> str:
        return (
            f"dtype auto on CPU ({self.capability}, {self.threads} threads): {self.dtype} "
            f"(a {'x'.join(map(str, MATMUL_SHAPE))} matmul ran at {self.float32_gflops:.1f} GFLOP/s in float32, "
            f"{self.bfloat16_gflops:.1f} in bfloat16: {self.speedup:.2f}x; bfloat16 needs {BF16_MIN_SPEEDUP}x)"
        )

    @classmethod
    def measure(cls) -> "CpuDtypeChoice":
        return cls(
            capability=torch.backends.cpu.get_cpu_capability(),
            threads=torch.get_num_threads(),
            float32_gflops=matmul_gflops(torch.float32),
            bfloat16_gflops=matmul_gflops(torch.bfloat16),
        )


@functools.cache
def cpu_dtype_choice() -> CpuDtypeChoice:
    """Measured once per process (about half a second) and logged."""
    choice = CpuDtypeChoice.measure()
    note(choice.describe())
    return choice


@functools.cache
def _cuda_dtype() -> str:
    dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    note(f"dtype auto on CUDA ({torch.cuda.get_device_name()}): {dtype}")
    return dtype


def resolve_dtype(name: str, device: Device) -> str:
    """`name` itself, or for "auto" what runs fast on `device` here.

    "precise" is for models whose small weight differences matter (merged models): bfloat16x2
    (evals.backends.split_precision) where bfloat16 is fast, float32 elsewhere.
    """
    if name == "precise":
        return "bfloat16x2" if resolve_dtype("auto", device) == "bfloat16" else "float32"
    if name != "auto":
        return name
    return _cuda_dtype() if device == "cuda" else cpu_dtype_choice().dtype
