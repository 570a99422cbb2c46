"""Loading a livejam ONNX model file into onnxruntime sessions (no torch here).

The file (written by tools/export_onnx.py) is one .onnx: the backbone graph
(step when T = 1, prefill when T > 1) plus one head graph per predicted field
(livejam.events.FIELDS) serialized in its metadata, with the model config and a
format version. See tools/export_onnx.py for the graphs' inputs and outputs.
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livejam.config import ConfigError, from_dict
from livejam.events import FIELDS, FORMAT_VERSION, Vocab

log = logging.getLogger(__name__)

N_FIELDS = len(FIELDS)  # part, dt, chord, pitch, vel: the heads' order


class ModelError(Exception):
    """The model file is missing, corrupt, or of another format version (one-line message)."""


@dataclass(frozen=True)
class ModelInfo:
    """The parts of the model config the engine needs (ModelConfig lives with torch)."""

    n_layer: int
    n_head: int
    d_model: int
    max_len: int
    vocab: Vocab
    config: dict[str, Any]  # the full config as stored

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


@dataclass
class LoadedModel:
    """Sessions of one model file: the backbone and one head per field."""

    path: Path
    info: ModelInfo
    backbone: Any  # onnxruntime.InferenceSession
    heads: list[Any]  # one InferenceSession per predicted field, in FIELDS order
    providers: list[str]  # what the backbone session really uses
    intra_op_threads: int
    batched: bool = False  # the backbone takes several sequences at once (B symbolic): the pair step


def session_options(intra_op_threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # spinning pool threads steal the core from the scheduler thread (DESIGN.md)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def default_providers() -> list[str]:
    """CUDA (when this onnxruntime build has it) then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _info(meta: dict[str, str], path: Path) -> ModelInfo:
    version = meta.get("livejam.format_version")
    if version is None:
        raise ModelError(f"{path}: not a livejam model (no livejam.format_version in its metadata)")
    if version != str(FORMAT_VERSION):
        raise ModelError(f"{path}: model format version {version}, this livejam reads version {FORMAT_VERSION}")
    try:
        cfg = json.loads(meta["livejam.config"])
        vocab = from_dict(Vocab, cfg["vocab"], "vocab")
        return ModelInfo(int(cfg["n_layer"]), int(cfg["n_head"]), int(cfg["d_model"]), int(cfg["max_len"]),
                         vocab, cfg)
    except (KeyError, TypeError, ValueError, ConfigError) as e:  # ConfigError is a ValueError
        raise ModelError(f"{path}: bad model config in metadata ({type(e).__name__}: {e})") from None


def load_model(path: str | Path, providers: list[str] | None = None, intra_op_threads: int = 1) -> LoadedModel:
    """Open a model file; ModelError (one line) if it is missing, corrupt or of another version."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    # No phoning home (see livejam/__init__.py for the import-time part): the
    # Windows ETW events are switched off here, before any session exists.
    ort.disable_telemetry_events()
    providers = providers or default_providers()
    opts = session_options(intra_op_threads)
    try:
        backbone = ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a loadable ONNX model ({first[:200]})") from None
    meta = dict(backbone.get_modelmeta().custom_metadata_map)
    info = _info(meta, path)
    heads = []
    for k in range(N_FIELDS):
        try:
            blob = base64.b64decode(meta[f"livejam.graph.head{k}"], validate=True)
            heads.append(ort.InferenceSession(blob, opts, providers=providers))
        except KeyError:
            raise ModelError(f"{path}: head graph {k} missing from the metadata") from None
        except (binascii.Error, ValueError, RuntimeError) as e:
            raise ModelError(f"{path}: head graph {k} is corrupt ({type(e).__name__})") from None
        except Exception as e:  # onnxruntime's own exception types
            raise ModelError(f"{path}: head graph {k} does not load ({type(e).__name__})") from None
    used = backbone.get_providers()
    log.info("model %s: %d layers, d=%d, max_len=%d; providers %s; %d intra-op thread(s)",
             path.name, info.n_layer, info.d_model, info.max_len, used, intra_op_threads)
    batched = isinstance(backbone.get_inputs()[0].shape[0], str)  # an older export fixed B at 1
    return LoadedModel(path, info, backbone, heads, used, intra_op_threads, batched)
