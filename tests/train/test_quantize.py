"""tools.quantize: a quantised file loads in the live engine and predicts nearly what the float file does."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx_ir")  # the train extra's; MatMulNBitsQuantizer needs it

from livejam.engine import open_engine

from tools.quantize import main


@pytest.mark.parametrize("bits", [8, 4])
def test_quantised_model_loads_and_agrees(tiny_model, tmp_path, bits):
    out = tmp_path / f"q{bits}.onnx"
    assert main([str(tiny_model), str(out), "--bits", str(bits)]) == 0
    float_engine, q_engine = open_engine(tiny_model), open_engine(out)  # each checks cached steps vs prefill
    assert q_engine.model.info == float_engine.model.info  # configs kept (the heads too: they loaded)
    rng = np.random.default_rng(0)
    rows = np.stack([rng.integers(0, 2, 24), rng.integers(0, 12, 24), rng.integers(0, 181, 24),
                     rng.integers(40, 80, 24), rng.integers(1, 33, 24), rng.integers(0, 48, 24),
                     rng.integers(0, 33, 24)], axis=1)
    for engine in (float_engine, q_engine):
        engine.reset()
        for row in rows:
            engine.feed(row)
    part, dt, chord, pitch, _, pos, _ = (int(x) for x in rows[-1])
    cond = (part, dt, pos, chord, pitch)  # Engine.logits' order
    a, b = float_engine.logits(3, cond), q_engine.logits(3, cond)  # the pitch head
    assert np.corrcoef(a, b)[0, 1] > 0.99


def test_missing_input_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "none.onnx"), str(tmp_path / "o.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
