"""`dtype: auto`: bfloat16 only where this machine measures it clearly faster than float32; logged once."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from evals.backends import dtype as dtypes
from evals.backends.dtype import BF16_MIN_SPEEDUP, CpuDtypeChoice, matmul_gflops, resolve_dtype


def test_the_rule_on_measured_rates():
    # 2 cores of an avx512_bf16 EPYC, and an AVX2-only CPU (the figures of issue 13).
    assert CpuDtypeChoice("AVX512", 2, 35.3, 105.1).dtype == "bfloat16"
    assert CpuDtypeChoice("AVX2", 2, 22.2, 1.1).dtype == "float32"
    # The capability string does not decide: AVX512 without bf16 units measures slow and stays float32.
    assert CpuDtypeChoice("AVX512", 2, 35.0, 20.0).dtype == "float32"
    assert CpuDtypeChoice("AVX512", 2, 30.0, 30.0 * BF16_MIN_SPEEDUP * 0.99).dtype == "float32"  # not worth it
    assert CpuDtypeChoice("AVX512", 2, 30.0, 30.0 * BF16_MIN_SPEEDUP).dtype == "bfloat16"
    line = CpuDtypeChoice("AVX2", 2, 22.2, 1.1).describe()
    assert "float32" in line and "AVX2" in line and "22.2 GFLOP/s" in line and "1.1 in bfloat16" in line


def test_explicit_dtypes_are_kept_and_auto_is_measured_once(monkeypatch):
    measured = []

    def measure():
        measured.append(1)
        return CpuDtypeChoice("AVX2", 2, 22.2, 1.1)

    monkeypatch.setattr(CpuDtypeChoice, "measure", staticmethod(measure))
    dtypes.cpu_dtype_choice.cache_clear()
    try:
        assert resolve_dtype("bfloat16", "cpu") == "bfloat16" and not measured
        assert resolve_dtype("auto", "cpu") == "float32"
        assert resolve_dtype("auto", "cpu") == "float32" and len(measured) == 1
    finally:
        dtypes.cpu_dtype_choice.cache_clear()


def test_matmul_rate_is_measured_quickly():
    assert matmul_gflops(dtypes.torch.float32, (8, 64, 64), seconds=0.01) > 0


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the AVX2 limit is an x86 setting")
def test_an_avx2_only_machine_measures_float32():
    """torch and oneDNN limited to AVX2 (as on a CPU without bf16 units): bf16 measures slow, auto picks float32."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = "from evals.backends.dtype import cpu_dtype_choice as c; x = c(); print(x.capability, x.dtype)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AVX2", "float32"]
    assert "dtype auto on CPU (AVX2" in done.stderr  # the decision is logged with its figures


def test_backends_and_configs_take_auto(monkeypatch, tiny_model_dir):
    from evals.backends.transformers_backend import TransformersBackend, TransformersBackendConfig
    from evals.backends.config import BackendConfig
    from seeds.debate.config import DebateConfig

    monkeypatch.setattr(CpuDtypeChoice, "measure", staticmethod(lambda: CpuDtypeChoice("AVX512", 2, 35.3, 105.1)))
    dtypes.cpu_dtype_choice.cache_clear()
    try:
        backend = TransformersBackend(str(tiny_model_dir), TransformersBackendConfig(dtype="auto"))
        assert backend.model.dtype == dtypes.torch.bfloat16
    finally:
        dtypes.cpu_dtype_choice.cache_clear()
    debate = DebateConfig(train=[{"task": "gsm8k", "limit": 1}], backend={"batch_size": 8})
    assert debate.backend.dtype == "auto"  # the debate generates: auto by default, a partial backend section too
    assert BackendConfig().dtype == "float32" and BackendConfig(dtype="auto").dtype == "auto"  # merges: float32
