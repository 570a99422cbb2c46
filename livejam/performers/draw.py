"""What the neural performer's next drawn event may be: the constraints of one draw.

Composed afresh before each sample from the player's settings (the knobs' constraints), the
timeline (only future times; the beat grid's phase; the note cap at this tempo) and the
roles: the duet's turn-taking (duet.py), call phrasing (call.py: answer a line with a line,
end on a chord tone), a melody over the human's chords (duet.py HumanVoices).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from livejam.events import EventCoder
from livejam.performers.call import CADENCE_HARMONY
from livejam.performers.duet import next_parts
from livejam.performers.texture import note_cap_ms


def min_dt_after(coder: EventCoder, now: float) -> int:
    """The smallest dt bin that lands strictly after `now`. A silence longer than dt reaches
    cannot be told to the model: the coder's last beat is moved up to keep it in range."""
    v = coder.vocab
    silence = (coder.beats.beat_at(now) - coder.beat) * v.ticks_per_beat  # ticks since the last event
    if silence >= v.max_dt_ticks:
        coder.beat += (int(silence) - v.max_dt_ticks // 2) / v.ticks_per_beat
        silence -= int(silence) - v.max_dt_ticks // 2
    # + 1e-6: a whole tick of silence may compute a hair short
    return min(int(np.floor(silence + 1e-6)) + 1, v.max_dt_ticks) if silence > 0 else 0


def draw_constraints(p, coder: EventCoder, now: float):
    """The constraints of the next draw of NeuralPerformer `p` at `now` (its knobs' constraints,
    narrowed by the timeline and its roles)."""
    v = coder.vocab
    min_dt = min_dt_after(coder, now)
    bpm = coder.beats.bpm_at(now)
    parts = next_parts(p.mode, p.neural, now, bool(p.notes), p.notes.last_on)
    phase = round(coder.beat * v.ticks_per_beat) % v.ticks_per_beat if bpm else None  # free time: no grid
    c = replace(p.constraints, parts=parts, min_dt_bin=min_dt, beat_phase=phase,
                max_note_ms=note_cap_ms(p.config, bpm))
    if p.mode == "call" and p.answer_end is not None:  # answer a line with a line, end on a chord tone
        c = replace(c, max_polyphony=min(c.max_polyphony or 128, p.phrasing.voices))
        if p.phrasing.in_cadence(now, p.answer_end, bpm):
            c = replace(c, harmony=CADENCE_HARMONY, lean_pcs=p.phrasing.cadence_pcs)
    elif p.mode == "duet" and p.human_voices.plays_chords(now):
        c = replace(c, max_polyphony=1)
    return c
