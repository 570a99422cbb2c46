"""Inference engine: onnxruntime session, KV cache, sampling with constraints (onnxruntime + numpy only)."""
from livejam.engine.keys import estimate_key, key_pitch_mask, parse_key, pitch_class_histogram
from livejam.engine.kv import LIVE_CONTEXT, Engine, live_context, open_engine
from livejam.engine.sampling import Constraints, EventSampler, NoteTracker, sample_logits
from livejam.engine.session import LoadedModel, ModelError, ModelInfo, load_model

__all__ = [
    "LIVE_CONTEXT", "Constraints", "Engine", "EventSampler", "LoadedModel", "ModelError", "ModelInfo", "NoteTracker",
    "estimate_key", "key_pitch_mask", "live_context", "load_model", "open_engine", "parse_key", "pitch_class_histogram", "sample_logits",
]
