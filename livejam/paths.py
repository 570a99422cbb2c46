"""Where livejam finds its shipped files."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The shipped default model (ONNX, self-describing) and its model card beside it.
DEFAULT_MODEL = REPO_ROOT / "models" / "livejam-small.onnx"
