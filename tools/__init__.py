"""Torch-side scripts: data preparation, the model, training, ONNX export (run as `python -m tools.NAME`)."""
import livejam  # noqa: F401  (first: it turns onnxruntime's telemetry off before anything imports onnxruntime)
