"""Export a trained EventTransformer to one self-contained ONNX file.

    python -m tools.export_onnx --checkpoint ckpt.pt --out models/NAME.onnx
    python -m tools.export_onnx --random --out /tmp/tiny.onnx n_layer=1 d_model=32 ...
    python -m tools.export_onnx --from-onnx OLD.onnx --out NEW.onnx   (same weights, this exporter's graphs)

The graphs are built directly from the weights with onnx.helper (no tracing),
so the step uses onnxruntime's GroupQueryAttention contrib op with the KV cache
in one preallocated buffer per layer and kind that is both the past input and
the present output (bound in place through IOBinding): a step costs only the
real context, nothing is copied or concatenated.

File format 2 (livejam.events.FORMAT_VERSION; the contract is livejam/events.py):
- main graph "backbone": inputs
    events        (B, T, 7) int64   rows of livejam.events.COLUMNS: part, dt, chord, pitch, vel, pos, tempo
    positions     (B, T)    int64   absolute positions start..start+T-1 of each sequence
    past_key_i    (B, H, L, hd) float32, past_value_i likewise (L = max_len)
  outputs
    h             (B, C) float32    final hidden state of each sequence's last position
    present_key_i / present_value_i (B, H, L, hd): the same buffers, updated
  T = 1 is the step; T > 1 is the prefill of a prompt (same graph). B = 1 but for the pair
  step: the engine's main and shadow contexts take one event each in one run (B = 2, each at
  its own position), which reads the weights once for both. A file whose batch is fixed at 1
  (an older export) still runs, without the pair step.
- metadata_props:
    livejam.format_version   "2"
    livejam.config           ModelConfig as JSON (livejam.config.to_dict, vocab inside)
    livejam.graphs           JSON list of graph names: ["backbone", "head0", .., "head4"]
    livejam.fields           JSON list of the heads' fields: part, dt, chord, pitch, vel
    livejam.cond             JSON list of the cond entries: part, dt, pos, chord, pitch
    livejam.graph.headK      base64 of a serialized ModelProto: inputs h (1, C) and,
                             for K > 0, cond (1, n_K) int64 with n = (0, 1, 3, 4, 5): the
                             first n_K of the next event's (part, dt, pos, chord, pitch);
                             output logits (1, V_K). Order part -> dt -> chord -> pitch -> vel.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from livejam.config import ConfigError, from_dict, merge, parse_override, to_dict
from livejam.events import COLUMNS, COND_COLUMNS, COND_COUNTS, FORMAT_VERSION
from tools.model import FIELDS, EventTransformer, ModelConfig

log = logging.getLogger("export_onnx")

OPSET = 20  # LayerNormalization (17), Gelu (20)
MS_DOMAIN = "com.microsoft"
LN_EPS = 1e-5


def load_checkpoint(path: str | Path) -> tuple[EventTransformer, ModelConfig]:
    """A training checkpoint -> (model in eval mode, its config)."""
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    # tools/train.py writes "model_config"; older checkpoints (and the tests) use "config"
    key = "model_config" if "model_config" in ckpt else "config"
    cfg = from_dict(ModelConfig, ckpt[key])
    model = EventTransformer(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg


def load_onnx_weights(path: str | Path) -> tuple[EventTransformer, ModelConfig]:
    """A livejam model file of the current format -> (model in eval mode, its config), every weight
    from the file (strict: a missing tensor is an error), to build its graphs again."""
    from tools.onnx_weights import state_dict_from_onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get("livejam.format_version") != str(FORMAT_VERSION):
        raise KeyError(f"{path}: format {meta.get('livejam.format_version')}, not {FORMAT_VERSION}")
    cfg = from_dict(ModelConfig, json.loads(meta["livejam.config"]))
    model = EventTransformer(cfg)
    model.load_state_dict(state_dict_from_onnx(str(path)))
    model.eval()
    return model, cfg


class _Builder:
    """Accumulates nodes and initializers of one graph."""

    def __init__(self, prefix: str = ""):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0
        self.prefix = prefix

    def const(self, name: str, arr) -> str:
        arr = np.asarray(arr)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, domain: str = "", **attrs):
        self.n += 1
        outs = [f"{op_type.lower()}_{self.n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, domain=domain or None, **attrs))
        return outs[0] if n_out == 1 else outs

    def layer_norm(self, x: str, ln: torch.nn.LayerNorm, name: str) -> str:
        w = self.const(f"{name}.weight", _np(ln.weight))
        b = self.const(f"{name}.bias", _np(ln.bias))
        return self.op("LayerNormalization", [x, w, b], axis=-1, epsilon=LN_EPS)

    def linear(self, x: str, lin: torch.nn.Linear, name: str) -> str:
        w = self.const(f"{name}.weight_t", _np(lin.weight).T.copy())  # (in, out)
        b = self.const(f"{name}.bias", _np(lin.bias))
        return self.op("Add", [self.op("MatMul", [x, w]), b])


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)]
    m = helper.make_model(graph, opset_imports=opsets, producer_name="livejam")
    m.ir_version = 10
    return m


def build_backbone(model: EventTransformer) -> onnx.ModelProto:
    cfg = model.cfg
    C, H, L = cfg.d_model, cfg.n_head, cfg.max_len
    hd = C // H
    b = _Builder()
    # one concatenated embedding table; each field's ids offset into it
    sizes = cfg.vocab.field_sizes
    table = np.concatenate([_np(e.weight) for e in model.embed])  # (sum V, C)
    offsets = np.cumsum([0, *sizes[:-1]]).astype(np.int64)  # (7,)
    ids = b.op("Add", ["events", b.const("field_offsets", offsets)])  # (1, T, 7)
    x = b.op("ReduceSum", [b.op("Gather", [b.const("embed_table", table), ids]),
                           b.const("axis2", np.array([2], np.int64))], keepdims=0)  # (1, T, C)
    x = b.op("Add", [x, b.op("Gather", [b.const("pos_table", _np(model.pos.weight)), "positions"])])
    # each sequence's last position (B,) is its length - 1; the attention spans the longest
    last = b.op("ReduceMax", ["positions", b.const("axis1", np.array([1], np.int64))], keepdims=0)  # (B,) int64
    seqlens_k = b.op("Cast", [last], to=TensorProto.INT32)  # (B,)
    longest = b.op("ReduceMax", [last], keepdims=0)  # () int64
    total = b.op("Cast", [b.op("Add", [longest, b.const("one", np.array(1, np.int64))])], to=TensorProto.INT32)  # ()
    inputs = [helper.make_tensor_value_info("events", TensorProto.INT64, ["B", "T", len(COLUMNS)]),
              helper.make_tensor_value_info("positions", TensorProto.INT64, ["B", "T"])]
    outputs = []
    for i, blk in enumerate(model.blocks):
        p = f"blocks.{i}"
        qkv = b.linear(b.layer_norm(x, blk.ln1, f"{p}.ln1"), blk.qkv, f"{p}.qkv")  # (1, T, 3C) packed [q|k|v]
        pk, pv, ok, ov = f"past_key_{i}", f"past_value_{i}", f"present_key_{i}", f"present_value_{i}"
        b.n += 1
        att = f"gqa_{i}"
        b.nodes.append(helper.make_node(
            "GroupQueryAttention", [qkv, "", "", pk, pv, seqlens_k, total], [att, ok, ov],
            domain=MS_DOMAIN, num_heads=H, kv_num_heads=H))  # (1, T, C)
        x = b.op("Add", [x, b.linear(att, blk.proj, f"{p}.proj")])
        f = b.op("Gelu", [b.linear(b.layer_norm(x, blk.ln2, f"{p}.ln2"), blk.ff1, f"{p}.ff1")])
        x = b.op("Add", [x, b.linear(f, blk.ff2, f"{p}.ff2")])
        for name in (pk, pv):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", H, L, hd]))
        for name in (ok, ov):
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["B", H, L, hd]))
    x = b.layer_norm(x, model.ln_f, "ln_f")
    b.nodes.append(helper.make_node("Gather", [x, b.const("last_index", np.array(-1, np.int64))], ["h"], axis=1))
    outputs.insert(0, helper.make_tensor_value_info("h", TensorProto.FLOAT, ["B", C]))
    graph = helper.make_graph(b.nodes, "backbone", inputs, outputs, b.inits)
    return _model(graph)


def build_head(model: EventTransformer, k: int) -> onnx.ModelProto:
    cfg = model.cfg
    C = cfg.d_model
    sizes = cfg.vocab.head_sizes
    cond_sizes = cfg.vocab.cond_sizes
    n = COND_COUNTS[k]
    b = _Builder()
    inputs = [helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, C])]
    h = "h"
    if n > 0:
        table = np.concatenate([_np(model.cond[j].weight) for j in range(n)])  # (sum of the n cond sizes, C)
        offsets = np.cumsum([0, *cond_sizes[:n - 1]]).astype(np.int64)  # (n,)
        ids = b.op("Add", ["cond", b.const("cond_offsets", offsets)])  # (1, n)
        e = b.op("ReduceSum", [b.op("Gather", [b.const("cond_table", table), ids]),
                               b.const("axis1", np.array([1], np.int64))], keepdims=0)  # (1, C)
        h = b.op("Add", [h, e])
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.INT64, [1, n]))
    head = model.heads[k]
    y = b.op("Gelu", [b.linear(b.layer_norm(h, head.ln, "ln"), head.fc, "fc")])
    b.nodes.append(helper.make_node("Add", [b.op("MatMul", [y, b.const("out.weight_t", _np(head.out.weight).T.copy())]),
                                            b.const("out.bias", _np(head.out.bias))], ["logits"]))
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, sizes[k]])]
    return _model(helper.make_graph(b.nodes, f"head{k}", inputs, outputs, b.inits))


def build(model: EventTransformer) -> onnx.ModelProto:
    """The single shipped file: backbone graph with the heads embedded in metadata."""
    main = build_backbone(model)
    names = ["backbone"] + [f"head{k}" for k in range(len(FIELDS))]
    meta = {
        "livejam.format_version": str(FORMAT_VERSION),
        "livejam.config": json.dumps(to_dict(model.cfg)),
        "livejam.graphs": json.dumps(names),
        "livejam.fields": json.dumps(list(FIELDS)),
        "livejam.cond": json.dumps([COLUMNS[c] for c in COND_COLUMNS]),
    }
    for k in range(len(FIELDS)):
        meta[f"livejam.graph.head{k}"] = base64.b64encode(build_head(model, k).SerializeToString()).decode("ascii")
    helper.set_model_props(main, meta)
    onnx.checker.check_model(main)
    return main


# --- parity check against torch ---------------------------------------------

def check_parity(model: EventTransformer, path: str | Path, events: np.ndarray, n_prefill: int) -> float:
    """Max abs logit difference, torch vs ONNX, over a prefill then one step per remaining event.

    events: (N, 7) ids. Uses onnxruntime directly (the engine is tested on its own).
    """
    import onnxruntime as ort

    cfg = model.cfg
    C, H, L = cfg.d_model, cfg.n_head, cfg.max_len
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    heads = [ort.InferenceSession(base64.b64decode(meta[f"livejam.graph.head{k}"]), opts,
                                  providers=["CPUExecutionProvider"]) for k in range(len(FIELDS))]
    kv = [ort.OrtValue.ortvalue_from_numpy(np.zeros((1, H, L, C // H), np.float32))
          for _ in range(2 * cfg.n_layer)]
    binding = sess.io_binding()
    for i in range(cfg.n_layer):
        for kind, j in (("key", 2 * i), ("value", 2 * i + 1)):
            binding.bind_ortvalue_input(f"past_{kind}_{i}", kv[j])
            binding.bind_ortvalue_output(f"present_{kind}_{i}", kv[j])
    h_out = ort.OrtValue.ortvalue_from_numpy(np.zeros((1, C), np.float32))
    binding.bind_ortvalue_output("h", h_out)
    with torch.no_grad():
        full = torch.from_numpy(events)[None]  # (1, N, 7)
        h_ref, _ = model.backbone(full)  # (1, N, C)
    worst = 0.0
    pos = 0
    chunks = [events[:n_prefill]] + [events[i:i + 1] for i in range(n_prefill, len(events))]
    for chunk in chunks:
        T = len(chunk)
        binding.bind_cpu_input("events", np.ascontiguousarray(chunk[None]))
        binding.bind_cpu_input("positions", np.arange(pos, pos + T, dtype=np.int64)[None])
        sess.run_with_iobinding(binding)
        h = h_out.numpy()  # (1, C)
        pos += T
        nxt = events[pos] if pos < len(events) else events[0]
        cond = nxt[list(COND_COLUMNS)][None]  # (1, 5): part, dt, pos, chord, pitch
        with torch.no_grad():
            ht = h_ref[0, pos - 1]
            for k in range(len(FIELDS)):
                ref = model.head_logits(ht[None], k, torch.from_numpy(cond)).numpy()  # (1, V_k)
                feed = {"h": h}
                if COND_COUNTS[k]:
                    feed["cond"] = np.ascontiguousarray(cond[:, :COND_COUNTS[k]])
                got = heads[k].run(None, feed)[0]
                worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def random_events(vocab, n: int, seed: int = 0) -> np.ndarray:
    """(n, 7) random valid ids starting with a start row."""
    rng = np.random.default_rng(seed)
    sizes = list(vocab.field_sizes)
    sizes[0] = vocab.n_parts  # the start row only comes first
    ev = np.stack([rng.integers(0, size, n) for size in sizes], axis=1)
    ev[0] = vocab.bos_row(int(ev[0, 6]))
    return ev.astype(np.int64)


def export(model: EventTransformer, out: str | Path, check: bool = True) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(model), str(out))
    if check:
        n = min(model.cfg.max_len, 96)
        err = check_parity(model, out, random_events(model.cfg.vocab, n), n_prefill=min(16, n // 2))
        log.info("parity torch vs onnx over %d events: max abs logit diff %.2e", n, err)
        if err > 1e-4:
            raise RuntimeError(f"parity check failed: max abs logit difference {err:.2e} > 1e-4")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="training checkpoint (.pt) with 'model' and 'model_config' (or 'config')")
    parser.add_argument("--random", action="store_true", help="export an untrained model (tests, benchmarks)")
    parser.add_argument("--from-onnx", metavar="PATH", help="a livejam model file: its weights, built again")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --random weights")
    parser.add_argument("--out", required=True, help="output .onnx path")
    parser.add_argument("--no-check", action="store_true", help="skip the torch-vs-onnx parity check")
    parser.add_argument("overrides", nargs="*", help="ModelConfig overrides key=value (with --random)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if sum(map(bool, (args.checkpoint, args.random, args.from_onnx))) != 1:
        parser.error("give exactly one of --checkpoint, --random or --from-onnx")
    try:
        if args.random:
            data = to_dict(ModelConfig())
            for text in args.overrides:
                keys, value = parse_override(text)
                data = merge(data, keys, value)
            cfg = from_dict(ModelConfig, data)
            torch.manual_seed(args.seed)
            model = EventTransformer(cfg).eval()
        else:
            if args.overrides:
                parser.error("config overrides only apply to --random")
            model, cfg = load_checkpoint(args.checkpoint) if args.checkpoint else load_onnx_weights(args.from_onnx)
    except (ConfigError, OSError, KeyError, RuntimeError) as e:
        parser.exit(2, f"export_onnx: {e}\n")
    path = export(model, args.out, check=not args.no_check)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {n_params / 1e6:.2f}M parameters, "
          f"{cfg.n_layer} layers, d={cfg.d_model}, max_len={cfg.max_len})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
