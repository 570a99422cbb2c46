"""The count-in: clicks of a bar or more before beat 0, on the drum channel, so the player comes in
with the machine (`--count-in BARS` with `--bpm`)."""
from __future__ import annotations

from livejam.config import BeatConfig
from livejam.midi.spec import Message, note_off, note_on


def count_in(bars: int, meter: int, bpm: float, beat0_time: float = 0.0, *, channel: int = 9,
             notes: tuple[int, int] = (76, 77), velocities: tuple[int, int] = (110, 75),
             length_beats: float = 0.25) -> list[tuple[float, Message]]:
    """The clicks of `bars` bars before beat 0 (at `beat0_time`): (time, message) pairs in
    time order, a note-on and its note-off per beat, the first note/velocity on downbeats."""
    spb = 60.0 / bpm
    n = bars * meter
    out = []
    for k in range(n):
        t = beat0_time - (n - k) * spb
        down = k % meter == 0
        note = notes[0] if down else notes[1]
        out.append((t, note_on(channel, note, velocities[0] if down else velocities[1])))
        out.append((t + length_beats * spb, note_off(channel, note)))
    out.sort(key=lambda p: (p[0], p[1].kind != "note_off"))  # offs first at equal times
    return out


def count_in_for(config: BeatConfig, beat0_time: float) -> list[tuple[float, Message]]:
    """count_in with the config's bars, meter, tempo, channel and notes ([] without a tempo)."""
    if config.bpm is None or config.count_in_bars == 0:
        return []
    return count_in(config.count_in_bars, config.meter, config.bpm, beat0_time, channel=config.click_channel,
                    notes=config.click_notes, velocities=config.click_velocities)
