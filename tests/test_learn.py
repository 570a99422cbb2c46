"""MIDI-learn of the live controls: the written file is a valid `livejam run --config`."""
from __future__ import annotations

import queue

from livejam.config import DaemonConfig, load
from livejam.learn import cc_numbers, learn_mapping, to_toml
from livejam.config import ControlMap


def test_learnt_mapping_round_trips_through_a_config_file(tmp_path):
    q: queue.SimpleQueue = queue.SimpleQueue()
    # a knob streams values (CC 70 several times), a note in between, then other controls
    for raw in ([0xB0, 70, 10], [0xB0, 70, 11], [0x90, 60, 100], [0xB0, 71, 5], [0xB0, 72, 127], [0xB0, 73, 127]):
        q.put(raw)
    lines = []
    mapping = learn_mapping(cc_numbers(q), timeout_s=0.05, prompt=lines.append)
    assert (mapping.temperature, mapping.density, mapping.pitch_centre, mapping.mode) == (70, 71, 72, 73)
    assert (mapping.reset, mapping.panic) == (ControlMap().reset, ControlMap().panic)  # nobody touched them
    assert any("(default)" in line for line in lines)
    path = tmp_path / "controls.toml"
    path.write_text(to_toml(mapping))
    assert load(DaemonConfig, path).neural.controls == mapping
