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


def test_learn_writes_valid_toml_whatever_form_the_file_holds_the_controls_in(tmp_path):
    """Issue 21 #10: with the controls as dotted keys under [neural] (or an inline table), learn appended a
    second [neural.controls] table: invalid TOML, after which every `livejam run` exited 2."""
    import pytest

    from livejam.config import ConfigError
    from livejam.learn import merge_into, write_atomically

    mapping = ControlMap(temperature=70, density=71)
    for existing in ("[neural]\ntemperature = 0.6\ncontrols.temperature = 20\n",
                     "neural = { temperature = 0.6, controls = { density = 30 } }\n",
                     "# my settings\n[neural]\ntemperature = 0.6\n\n[neural.controls]\ntemperature = 20\n"):
        path = tmp_path / "c.toml"
        write_atomically(path, merge_into(existing, mapping))
        cfg = load(DaemonConfig, path)
        assert cfg.neural.controls == mapping and cfg.neural.temperature == 0.6, existing
        assert not (tmp_path / ".c.toml.tmp").exists()
    kept = merge_into("# my settings\n[neural]\ntemperature = 0.6\n", mapping)
    assert kept.startswith("# my settings")  # the text form keeps the user's comments where it can
    with pytest.raises(ConfigError, match="not valid TOML"):
        merge_into("[neural\n", mapping)  # the file is left alone
