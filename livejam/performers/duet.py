"""Duet turn-taking: whose event the model may predict next.

In a duet the model predicts the human's events too, and the machine plays only when its own
part comes next, so it does not crowd every gap the human leaves. But a context of the human
alone reads as a solo piece, where the other part never comes: with nothing of its own sounding
for `duet_restart_s`, the machine takes the next turn itself.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from livejam.config import NeuralConfig

HUMAN_PART, MACHINE_PART = 0, 1


def next_parts(mode: str, neural: NeuralConfig, now: float, machine_sounding: bool,
               last_machine_on: float) -> tuple[int, ...]:
    """The parts the next sampled event may belong to."""
    if mode == "call":
        return (HUMAN_PART,)  # an answer continues the human's part
    if not neural.duet_turn_taking or (not machine_sounding and now - last_machine_on > neural.duet_restart_s):
        return (MACHINE_PART,)
    return (HUMAN_PART, MACHINE_PART)


def draw_turn(draw: Callable, c, now: float, deadline: float | None) -> None:
    """Draw the next event with `draw(constraints) -> (part, time)`, and again where a duet needs it:
    "the human, at once" when nothing came is asked for later (or the machine now); and a human turn
    after `deadline` (when the machine's held notes must end) is the machine's move instead."""
    part, t = draw(c)
    if part == HUMAN_PART and t <= now and c.parts != (HUMAN_PART,):
        part, t = draw(replace(c, min_dt_bin=max(c.min_dt_bin, 1)))
    if part == HUMAN_PART and deadline is not None and t > deadline and c.parts != (HUMAN_PART,):
        draw(replace(c, parts=(MACHINE_PART,)))


class HumanVoices:
    """How many notes the human has held at once lately. A pianist answering a melody plays chords,
    and over someone's chords plays a line: when the human holds `chordal` notes at once within the
    last `window_s`, the machine's duet part is a single line."""

    def __init__(self, chordal: int, window_s: float = 4.0):
        self.chordal = chordal  # 0: off
        self.window_s = window_s
        self._sounding: set[int] = set()
        self._last_chordal = float("-inf")  # when the human last held `chordal` notes at once

    def hear(self, pitch: int, velocity: int, t: float) -> None:
        if velocity > 0:
            self._sounding.add(pitch)
            if self.chordal and len(self._sounding) >= self.chordal:
                self._last_chordal = t
        else:
            self._sounding.discard(pitch)

    def plays_chords(self, now: float) -> bool:
        return now - self._last_chordal <= self.window_s
