"""Export to ONNX (format 2): parity with torch (prefill + >= 64 cached steps) and the file's metadata."""
import base64
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from livejam.config import from_dict, to_dict  # noqa: E402
from livejam.events import COND_COUNTS, FORMAT_VERSION  # noqa: E402
from tools import export_onnx  # noqa: E402
from tools.model import EventTransformer, ModelConfig  # noqa: E402

TINY = dict(n_layer=2, n_head=4, d_model=32, d_ff=64, max_len=128)


def tiny_model(seed: int = 0, scale: float = 0.3) -> EventTransformer:
    cfg = from_dict(ModelConfig, {**to_dict(ModelConfig()), **TINY})
    torch.manual_seed(seed)
    model = EventTransformer(cfg).eval()
    with torch.no_grad():  # larger than the init so logits are O(1) and the check means something
        for p in model.parameters():
            p.normal_(0.0, scale)
    return model


def test_parity_prefill_then_steps(tmp_path):
    model = tiny_model()
    path = export_onnx.export(model, tmp_path / "m.onnx", check=False)
    events = export_onnx.random_events(model.cfg.vocab, 100, seed=1)
    err = export_onnx.check_parity(model, path, events, n_prefill=20)  # 1 prefill + 80 steps
    assert err <= 1e-4


def test_metadata_and_single_file(tmp_path):
    model = tiny_model()
    path = export_onnx.export(model, tmp_path / "m.onnx", check=False)
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["livejam.format_version"] == str(FORMAT_VERSION)
    assert from_dict(ModelConfig, json.loads(meta["livejam.config"])) == model.cfg
    names = json.loads(meta["livejam.graphs"])
    assert meta["livejam.format_version"] == "2"
    assert names == ["backbone", "head0", "head1", "head2", "head3", "head4"]
    assert json.loads(meta["livejam.fields"]) == ["part", "dt", "chord", "pitch", "vel"]
    assert json.loads(meta["livejam.cond"]) == ["part", "dt", "pos", "chord", "pitch"]
    events = proto.graph.input[0]
    assert events.name == "events" and [d.dim_value for d in events.type.tensor_type.shape.dim][2] == 7
    for k in range(5):
        head = onnx.load_from_string(base64.b64decode(meta[f"livejam.graph.head{k}"]))
        assert head.graph.output[0].type.tensor_type.shape.dim[1].dim_value == model.cfg.vocab.head_sizes[k]
        inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in head.graph.input}
        assert inputs == ({"h": [1, 32]} if k == 0 else {"h": [1, 32], "cond": [1, COND_COUNTS[k]]})


def test_checkpoint_roundtrip_and_cli(tmp_path):
    model = tiny_model(seed=3)
    ckpt = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "config": to_dict(model.cfg), "step": 7}, ckpt)
    loaded, cfg = export_onnx.load_checkpoint(ckpt)
    assert cfg == model.cfg
    out = tmp_path / "m.onnx"
    assert export_onnx.main(["--checkpoint", str(ckpt), "--out", str(out)]) == 0  # includes the parity check
    assert out.exists()


def test_cli_random(tmp_path):
    out = tmp_path / "r.onnx"
    args = ["--random", "--out", str(out)] + [f"{k}={v}" for k, v in TINY.items()]
    assert export_onnx.main(args) == 0
    with pytest.raises(SystemExit):
        export_onnx.main(["--random", "--out", str(out), "bogus_key=1"])


def test_weights_come_back_from_the_onnx_file(tmp_path):
    """tools/onnx_weights (train --init X.onnx) rebuilds every tensor of a format-2 file exactly."""
    from tools.onnx_weights import state_dict_from_onnx

    model = tiny_model(seed=5)
    path = export_onnx.export(model, tmp_path / "m.onnx", check=False)
    got = state_dict_from_onnx(str(path))
    want = model.state_dict()
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert torch.equal(got[name], tensor), name
