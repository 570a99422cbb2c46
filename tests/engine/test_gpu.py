"""The CUDA provider path: runs where onnxruntime-gpu sees a GPU, skipped everywhere else.

    pip uninstall -y onnxruntime && pip install onnxruntime-gpu   # never both in one environment
    .venv/bin/python -m pytest -m gpu

On CUDA the engine keeps the KV cache in device memory (engine/kv.py `_Context`) and runs its
self-check (cached steps == prefill) before it is used; a provider that fails it would make
open_engine fall back to the CPU with a warning, which these tests count as a failure.
"""
import numpy as np
import pytest

from livejam.config import DEFAULT_MODEL
from livejam.events import COND_COLUMNS, FIELDS


def _cuda_available() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not _cuda_available(), reason="no CUDAExecutionProvider (onnxruntime-gpu and a GPU)")]

CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
CPU = ["CPUExecutionProvider"]


def _events(vocab, n, seed=0):
    rng = np.random.default_rng(seed)
    sizes = list(vocab.field_sizes)
    sizes[0] = vocab.n_parts  # no start markers inside
    return np.stack([rng.integers(0, size, n) for size in sizes], 1).astype(np.int64)


@pytest.fixture(scope="module")
def engines():
    from livejam.engine.kv import open_engine

    return open_engine(DEFAULT_MODEL, providers=CUDA), open_engine(DEFAULT_MODEL, providers=CPU)


def test_the_shipped_model_runs_on_cuda_with_its_cache_on_the_device(engines):
    gpu, _ = engines
    assert gpu.model.providers[0] == "CUDAExecutionProvider"  # not the silent CPU fallback
    kv = gpu._main.kv + gpu._shadow.kv
    assert kv and all(v.device_name().lower() == "cuda" for v in kv)


def test_cuda_steps_agree_with_the_cpu_across_a_context_swap(engines):
    gpu, cpu = engines
    ev = _events(gpu.vocab, gpu.context + 40, seed=3)  # past the live context: the shadow swap runs too
    for e in (gpu, cpu):
        e.reset()
    for t in ev:
        gpu.feed(t)
        cpu.feed(t)
    assert gpu.swaps == cpu.swaps >= 1
    np.testing.assert_allclose(gpu.h, cpu.h, atol=2e-3)
    cond = ev[-1][list(COND_COLUMNS)]
    for k in range(len(FIELDS)):
        np.testing.assert_allclose(gpu.logits(k, cond), cpu.logits(k, cond), atol=2e-3)
