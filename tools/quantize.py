"""Weight-only quantisation of a livejam model file: int8 (dynamic) or 4-bit blocks.

    python -m tools.quantize MODEL.onnx OUT.onnx --bits 8     # MatMul weights in 8-bit blocks of 32 (MatMulNBits)
    python -m tools.quantize MODEL.onnx OUT.onnx --bits 4     # ... in 4-bit blocks
    python -m tools.quantize MODEL.onnx OUT.onnx --bits 8 --heads   # the heads' MatMuls too (the shipped file)

The backbone graph's MatMul weights are quantised, and with --heads those of the five
heads (ONNX graphs stored in the file's metadata); every other metadata entry is kept
as it is, so the result loads wherever the float file does (`livejam run --model OUT.onnx`). Measure what it
costs and buys beside the float file, on the same data and in the same run:

    livejam eval --model OUT.onnx --data DATA/val.tokens.npy --max-events 20000
    livejam bench --vs-notochord --model OUT.onnx
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import livejam  # noqa: F401  (onnxruntime's telemetry off before it is imported)


def quantize(src: str | Path, out: str | Path, bits: int, heads: bool = False) -> Path:
    import onnx

    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    if bits not in (8, 4):
        raise ValueError(f"bits must be 8 or 4, got {bits}")
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    # Weight-only (MatMulNBits), not quantize_dynamic: dynamic quantisation scales the
    # activations per call, so a prefill and the same events stepped one by one disagree
    # (by 0.035 in the logits) and the engine's cached-step check rejects the file.
    # accuracy_level 4: int8 activations inside the kernel, per block (the fast path on AVX2/VNNI).
    def weights_only(proto):
        config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=bits)
        quantizer = MatMulNBitsQuantizer(proto, algo_config=config)
        quantizer.process()
        return quantizer.model.model

    result = weights_only(model)
    del result.metadata_props[:]
    if heads:
        # The heads too: five of them run per event, each reading its float weights (~0.4 MB: 1.9 MB
        # in all) from beyond the L2 cache, which the backbone's step has just filled with its own.
        for k in range(len(json.loads(meta["livejam.fields"]))):
            key = f"livejam.graph.head{k}"
            head = weights_only(onnx.load_model_from_string(base64.b64decode(meta[key])))
            meta[key] = base64.b64encode(head.SerializeToString()).decode("ascii")
    onnx.helper.set_model_props(result, meta)  # the configs unchanged; the heads as asked
    out = Path(out)
    onnx.save(result, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--bits", type=int, choices=(8, 4), default=8)
    ap.add_argument("--heads", action="store_true", help="quantise the heads' MatMul weights too")
    args = ap.parse_args(argv)
    if not Path(args.model).is_file():
        print(f"tools.quantize: {args.model}: no such file", file=sys.stderr)
        return 2
    out = quantize(args.model, args.out, args.bits, heads=args.heads)
    print(f"{args.model} -> {out} ({out.stat().st_size / 1e6:.1f} MB, {args.bits}-bit MatMul weights"
          f"{' in the backbone and heads' if args.heads else ' in the backbone'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
