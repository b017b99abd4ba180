"""One backend config and one factory; the GPU backend fails with a message naming the fix, never a bare ImportError."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import ValidationError

from evals.backends.config import BackendConfig
from evals.backends.registry import backend_name, load_backend
from evals.errors import BackendUnavailable, EvalsError


def test_transformers_by_name(tiny_model_dir):
    backend = load_backend(str(tiny_model_dir), BackendConfig(name="transformers", batch_size=4))
    assert backend.name == "transformers" and backend.config.batch_size == 4


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_without_vllm_names_the_install(tiny_model_dir):
    with pytest.raises(BackendUnavailable, match=r"pip install '\.\[gpu\]'.*transformers"):
        load_backend(str(tiny_model_dir), BackendConfig(name="vllm"))
    assert issubclass(BackendUnavailable, EvalsError)  # a user error, printed as one line by the CLI


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_auto_is_transformers_without_vllm():
    assert backend_name(BackendConfig(name="auto")) == "transformers"


def test_unknown_backend():
    with pytest.raises(ValidationError, match="'transformers' or 'vllm'"):
        BackendConfig(name="tpu")
