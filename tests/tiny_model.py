"""The tiny test model: tests/data/tiny.onnx, committed so the runtime tests need no torch.

A random v2 model (seed 0; 1 layer, 2 heads, d_model 32, d_ff 64, max_len 64; the default
vocabulary) whose dt head leans to short times, so the untrained model plays often enough for
the performer tests to see answers. It is made here, with torch and onnx (the training extra):

    python -m tests.tiny_model          # rewrites tests/data/tiny.onnx

tests/engine/test_tiny_model.py rebuilds it into a temporary folder and fails when the committed
file is stale (a changed exporter, model or vocabulary).
"""
from __future__ import annotations

from pathlib import Path

PATH = Path(__file__).resolve().parent / "data" / "tiny.onnx"
SEED = 0
OVERRIDES = {"n_layer": 1, "n_head": 2, "d_model": 32, "d_ff": 64, "max_len": 64}


def build(out: str | Path) -> Path:
    """Export the tiny model to `out` (needs torch and onnx)."""
    import torch

    from livejam.config import from_dict, to_dict
    from tools.export_onnx import export
    from tools.model import EventTransformer, ModelConfig

    cfg = from_dict(ModelConfig, {**to_dict(ModelConfig()), **OVERRIDES})
    torch.manual_seed(SEED)
    model = EventTransformer(cfg).eval()
    with torch.no_grad():
        model.heads[1].out.bias.copy_(-0.05 * torch.arange(cfg.vocab.n_dt, dtype=torch.float32))
    return export(model, out, check=True)


if __name__ == "__main__":
    path = build(PATH)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path} "
          f"({path.stat().st_size / 1e3:.0f} kB)")
