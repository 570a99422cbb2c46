"""The live controls' table (livejam/config/controls.py) is the one place a control is defined: every
knob round-trips CC -> value -> CC, every CC reaches the performer as the value the table says, and
README, learn, the screen's keys and OSC all list the same controls."""
from __future__ import annotations

import dataclasses
import re

import pytest

from livejam.config import ControlMap, DaemonConfig, load
from livejam.config.controls import BY_NAME, CONTROLS, KNOBS
from livejam.engine.sampling import Constraints
from livejam.performers.knobs import turn
from tests.conftest import ROOT


def test_control_map_is_the_tables_names_and_default_ccs():
    assert [(f.name, f.default) for f in dataclasses.fields(ControlMap)] == [(c.name, c.default_cc) for c in CONTROLS]
    assert len({c.default_cc for c in CONTROLS}) == len(CONTROLS)  # no two share a default CC


@pytest.mark.parametrize("knob", KNOBS, ids=lambda k: k.name)
def test_every_knob_round_trips_cc_value_cc(knob):
    for cc in range(128):
        assert knob.cc(knob.value(cc)) == cc
    with pytest.raises(ValueError, match="out of range"):
        knob.cc(knob.lo - 1.0)


@pytest.mark.parametrize("knob", KNOBS, ids=lambda k: k.name)
def test_a_knobs_cc_sets_the_tables_value_in_the_performer(knob):
    c = turn(Constraints(), ControlMap(), knob.default_cc, 100, pitch_span=18)
    if knob.name == "pitch_centre":
        centre = round(knob.value(100))
        assert c.pitch_range == (centre - 18, centre + 18)
    else:
        assert getattr(c, knob.name) == pytest.approx(knob.value(100))


def test_the_readme_table_lists_every_control_as_the_table_says():
    readme = (ROOT / "README.md").read_text()
    for c in CONTROLS:
        assert f"| {c.label} | {c.default_cc} | {c.meaning} |" in readme, c.name


def test_learn_asks_for_every_control_and_the_screen_has_their_keys():
    from livejam.learn import learn_mapping

    asked: list[str] = []
    learn_mapping(lambda timeout: None, 0.0, prompt=asked.append)
    for c in CONTROLS:
        assert any(c.learn in line for line in asked), c.name
    pytest.importorskip("rich")
    from livejam.stage.ui.screen import KEYS

    for c in CONTROLS:
        if c.keys:
            assert re.search(rf"\[{c.keys[0]}[/\]]", KEYS) and c.name in KEYS, c.name


def test_every_osc_name_is_the_tables_or_documented():
    from livejam.stage.steer import NAMES

    assert set(BY_NAME) <= set(NAMES)


def test_a_cc_out_of_0_127_is_refused_at_load():
    from livejam.config import ConfigError

    with pytest.raises(ConfigError, match="neural.controls.grid=128"):
        load(DaemonConfig, None, ["neural.controls.grid=128"])
    assert load(DaemonConfig, None, ["neural.controls.grid=-1"]).neural.controls.grid == -1
