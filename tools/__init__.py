"""Torch-side scripts: data preparation, the model, training, ONNX export (run as `python -m tools.NAME`)."""
