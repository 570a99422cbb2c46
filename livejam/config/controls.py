"""The live controls, one row each: everything that lists them is derived from CONTROLS.

A row says the control's name (its ControlMap field, its OSC address /livejam/<name>, its `--set
neural.controls.<name>` key), its default CC, how a CC value 0..127 becomes a value and back (knobs:
linear lo..hi; switches: < 64 / >= 64; triggers: >= 64), the status screen's keys, learn's prompt and
the README's words. A new knob is one row here plus its use in the performer (performers/knobs.py);
tests/stage/test_controls.py checks that every knob round-trips CC -> value -> CC and that README lists it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, make_dataclass


@dataclass(frozen=True)
class Control:
    name: str
    default_cc: int
    kind: str  # "knob" (a value lo..hi over CC 0..127), "switch" (< 64 / >= 64), "trigger" (>= 64 acts)
    lo: float = 0.0
    hi: float = 1.0  # the value at CC 127
    top: float | None = None  # the largest value OSC and the keys may ask for, where CC 127 falls short of it
    keys: str = ""  # status screen: a knob's "down up" keys (e.g. "tT"), a switch's or trigger's key
    step: float = 0.0  # a knob's change per key press
    learn: str = ""  # `livejam learn` asks: "move <learn>"
    label: str = ""  # README's name of the control
    meaning: str = ""  # README's range column

    def value(self, cc: int) -> float:
        """The knob's value at CC `cc` (0..127)."""
        return self.lo + (self.hi - self.lo) * cc / 127

    @property
    def most(self) -> float:
        """The largest value a knob may be asked for: `top`, else its value at CC 127."""
        return self.hi if self.top is None else self.top

    def cc(self, value: float) -> int:
        """The CC that sets the knob nearest `value`; ValueError outside lo..most (not clamped: a
        sender asking for more than the knob gives should hear so)."""
        if not (math.isfinite(value) and self.lo <= value <= self.most):
            raise ValueError(f"{self.name}: {value:g} is out of range: expected {self.lo:g}..{self.most:g}")
        return max(0, min(127, round((value - self.lo) / (self.hi - self.lo) * 127)))


CONTROLS: tuple[Control, ...] = (
    Control("temperature", 21, "knob", 0.05, 1.5, keys="tT", step=0.1,
            learn="a knob for the temperature (how adventurous)", label="temperature",
            meaning="0..127 -> 0.05..1.5"),
    # 64 = 0, as the model likes: (cc - 64) / 32, so CC 127 is 2 - 1/32
    Control("density", 22, "knob", -2.0, 2.0 - 1.0 / 32, top=2.0, keys="dD", step=0.25,
            learn="a knob for the density (sparser <-> denser)", label="density",
            meaning="0..127 -> -2..+2 (64 = as the model likes)"),
    Control("pitch_centre", 23, "knob", 30.0, 90.0, learn="a knob for the pitch range centre",
            label="pitch range centre", meaning="0..127 -> centre note 30..90, +-18 semitones"),
    Control("mode", 24, "switch", keys="m", learn="a button/switch for the mode (call <-> duet)", label="mode",
            meaning="< 64 call, >= 64 duet"),
    Control("reset", 25, "trigger", keys="r", learn="a button that resets the model's context",
            label="reset context", meaning=">= 64"),
    Control("panic", 26, "trigger", keys="p", learn="a button for panic (all machine notes off)", label="panic",
            meaning=">= 64: every machine note ends now"),
    Control("harmony", 27, "knob", 0.0, 1.0, keys="hH", step=0.1,
            learn="a knob for the harmony (how strongly it leans to the chord's tones)", label="harmony",
            meaning="0..127 -> 0 (off) .. 1 (strong lean to the chord's tones)"),
    Control("grid", 28, "knob", 0.0, 1.0, keys="gG", step=0.1,
            learn="a knob for the grid (how strongly onsets lean to the beat's 16ths)", label="grid",
            meaning="0..127 -> 0 (off) .. 1 (strong lean of onsets to the beat's 16ths)"),
)
BY_NAME = {c.name: c for c in CONTROLS}
KNOBS = tuple(c for c in CONTROLS if c.kind == "knob")

# CC number of each live control (-1: not mapped); the defaults are the first knobs of common controllers
ControlMap = make_dataclass("ControlMap", [(c.name, int, c.default_cc) for c in CONTROLS], frozen=True,
                            namespace={"__doc__": "CC number of each live control (-1: not mapped), from CONTROLS.",
                                       "__module__": __name__})
