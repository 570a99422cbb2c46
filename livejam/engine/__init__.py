"""Inference engine: onnxruntime session, KV cache, sampling with constraints (onnxruntime + numpy only)."""
from livejam.engine.keys import estimate_key, key_pitch_mask, parse_key, pitch_class_histogram
from livejam.engine.kv import Engine, open_engine
from livejam.engine.sampling import Constraints, EventSampler, NoteTracker, sample_logits
from livejam.engine.session import LoadedModel, ModelError, ModelInfo, load_model

__all__ = [
    "Constraints", "Engine", "EventSampler", "LoadedModel", "ModelError", "ModelInfo", "NoteTracker",
    "estimate_key", "key_pitch_mask", "load_model", "open_engine", "parse_key", "pitch_class_histogram", "sample_logits",
]
