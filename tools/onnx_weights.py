"""Weights of a livejam ONNX file back as a torch state dict, for fine-tuning (`train.py --init X.onnx`).

The graphs were built from the weights by tools/export_onnx.py, so every tensor is
there under a name that says what it is: linear weights transposed (`*.weight_t`),
the field embeddings concatenated (`embed_table`, rows in the file's field order), the
heads' graphs in the metadata. A file of an older format gives what still fits: a v1
model (fields part, dt in ms, pitch, vel) gives the backbone, the part/pitch/velocity
embeddings and heads; its dt tables (milliseconds) do not fit the beat ticks and stay
fresh, as do the new chord, bar-position and tempo tables.
"""
from __future__ import annotations

import base64
import json
import logging

import numpy as np
import torch

log = logging.getLogger("onnx_weights")

# a field's name -> its column (embedding) and head index in the current model
EMBED = {"part": 0, "dt": 1, "chord": 2, "pitch": 3, "vel": 4, "pos": 5, "tempo": 6}
HEAD = {"part": 0, "dt": 1, "chord": 2, "pitch": 3, "vel": 4}
COND = {"part": 0, "dt": 1, "pos": 2, "chord": 3, "pitch": 4}


def _fields(meta: dict) -> tuple[list[str], list[int], list[str], list[str], list[int]]:
    """(embedding fields, their sizes, head fields, cond fields, their sizes) of the file, in its own order."""
    cfg = json.loads(meta["livejam.config"])
    v = cfg["vocab"]
    if meta.get("livejam.format_version") == "1":
        sizes = [v.get("n_parts", 2) + 1, len(v["dt_ms"]), v.get("n_pitch", 128), v.get("n_vel", 33)]
        names = ["part", "dt", "pitch", "vel"]
        return names, sizes, names, names[:-1], sizes[:-1]  # v1 heads saw the earlier fields, in field order
    from livejam.config import from_dict
    from livejam.events import COLUMNS, COND_COLUMNS, FIELDS, Vocab

    vocab = from_dict(Vocab, v, "vocab")
    # format 2: the cond table is in COND_COLUMNS order (part, dt, pos, chord, pitch), not the heads' order
    return (list(COLUMNS), list(vocab.field_sizes), list(FIELDS), [COLUMNS[c] for c in COND_COLUMNS],
            list(vocab.cond_sizes))


def _tensors(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in graph.initializer}


def state_dict_from_onnx(path: str) -> dict[str, torch.Tensor]:
    """Tensors named as in tools/model.py's EventTransformer (only those the file holds)."""
    import onnx

    proto = onnx.load(path)
    meta = {p.key: p.value for p in proto.metadata_props}
    fields, sizes, heads, conds, cond_sizes = _fields(meta)
    t = _tensors(proto.graph)
    out: dict[str, np.ndarray] = {}
    for name, arr in t.items():
        if name.startswith(("blocks.", "ln_f.")):
            out[name[:-2] if name.endswith("_t") else name] = arr.T if name.endswith("_t") else arr
    if "pos_table" in t:
        out["pos.weight"] = t["pos_table"]
    if "embed_table" in t:
        start = 0
        for field, size in zip(fields, sizes):
            if field in EMBED:
                out[f"embed.{EMBED[field]}.weight"] = t["embed_table"][start:start + size]
            start += size
    for k, field in enumerate(heads):
        blob = meta.get(f"livejam.graph.head{k}")
        if blob is None or field not in HEAD:
            continue
        h = _tensors(onnx.load_from_string(base64.b64decode(blob)).graph)
        j = HEAD[field]
        for name in ("ln.weight", "ln.bias", "fc.weight_t", "fc.bias", "out.weight_t", "out.bias"):
            if name in h:
                key = f"heads.{j}.{name[:-2] if name.endswith('_t') else name}"
                out[key] = h[name].T if name.endswith("_t") else h[name]
        if "cond_table" in h and k == len(heads) - 1:  # the last head's table holds every earlier field's
            start = 0
            for field_c, size in zip(conds, cond_sizes):
                if field_c in COND:
                    out[f"cond.{COND[field_c]}.weight"] = h["cond_table"][start:start + size]
                start += size
    log.info("%s: %d tensors read (format %s)", path, len(out), meta.get("livejam.format_version"))
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in out.items()}
