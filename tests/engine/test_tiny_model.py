"""The committed tiny test model (tests/data/tiny.onnx) is what tests/tiny_model.py makes today.

Training extra only (torch, onnx): rebuilds the model with the same seed and settings into a
temporary folder and compares it with the committed file: the metadata (but the embedded heads)
and every graph's inputs, outputs and operators exactly, the weights and the outputs on fixed
events within float tolerance (exports are byte-identical on one torch version; the tolerance
keeps a torch upgrade that changes only rounding from failing). Stale: `python -m tests.tiny_model`.
"""
import base64

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

from livejam.engine import Engine, load_model  # noqa: E402
from livejam.events import COND_COLUMNS, FIELDS  # noqa: E402
from tests import tiny_model  # noqa: E402

STALE = "tests/data/tiny.onnx is stale: regenerate it with `python -m tests.tiny_model` and commit it"


def graphs(proto):
    """{name: GraphProto} of the backbone and the heads embedded in its metadata."""
    meta = {p.key: p.value for p in proto.metadata_props}
    out = {"backbone": proto.graph}
    for key, value in meta.items():
        if key.startswith("livejam.graph."):
            out[key.removeprefix("livejam.graph.")] = onnx.load_model_from_string(base64.b64decode(value)).graph
    return out


def signature(graph):
    """Inputs and outputs (name, element type, shape) and the operator sequence of one graph."""
    def io(values):
        return [(v.name, v.type.tensor_type.elem_type,
                 [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]) for v in values]
    return io(graph.input), io(graph.output), [(n.domain, n.op_type) for n in graph.node]


def fixed_outputs(path):
    """Every head's logits after a prefill of fixed events, and after one more step."""
    model = load_model(path)
    vocab = model.info.vocab
    rng = np.random.default_rng(7)
    sizes = list(vocab.field_sizes)
    sizes[0] = vocab.n_parts
    ev = np.stack([rng.integers(0, size, 24) for size in sizes], 1).astype(np.int64)
    engine = Engine(model)
    engine.prefill(ev[:20])
    out = [engine.logits(k, ev[20][list(COND_COLUMNS)]) for k in range(len(FIELDS))]
    engine.feed(ev[20])
    out += [engine.logits(k, ev[21][list(COND_COLUMNS)]) for k in range(len(FIELDS))]
    return out


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    return tiny_model.build(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def test_committed_tiny_model_is_small():
    assert tiny_model.PATH.stat().st_size < 1_000_000


def test_committed_tiny_model_is_not_stale(rebuilt):
    new, old = onnx.load(str(rebuilt)), onnx.load(str(tiny_model.PATH))
    meta_new = {p.key: p.value for p in new.metadata_props if not p.key.startswith("livejam.graph.")}
    meta_old = {p.key: p.value for p in old.metadata_props if not p.key.startswith("livejam.graph.")}
    assert meta_new == meta_old, STALE
    g_new, g_old = graphs(new), graphs(old)
    assert sorted(g_new) == sorted(g_old), STALE
    for name in g_new:
        assert signature(g_new[name]) == signature(g_old[name]), f"{STALE} (graph {name})"
        w_new = {t.name: numpy_helper.to_array(t) for t in g_new[name].initializer}
        w_old = {t.name: numpy_helper.to_array(t) for t in g_old[name].initializer}
        assert sorted(w_new) == sorted(w_old), f"{STALE} (graph {name})"
        for key in w_new:
            assert w_new[key].shape == w_old[key].shape, f"{STALE} ({name}: {key})"
            np.testing.assert_allclose(w_new[key], w_old[key], rtol=1e-5, atol=1e-6, err_msg=f"{STALE} ({name}: {key})")
    for a, b in zip(fixed_outputs(rebuilt), fixed_outputs(tiny_model.PATH), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=STALE)
