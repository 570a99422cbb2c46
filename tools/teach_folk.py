"""Simulated sessions of one folk style, to measure `teach` (issue 19: "10 sessions of one folk genre").

    python -m tools.teach_folk OUT_DIR --sessions 10 --seed 0

Each file is what `livejam run` records (livejam.recording.Recorder, a --bpm session with a
count-in): the human plays a reel (4/4) or a jig (6/8, written as 3/4 beats) in AABB form, eighth
notes with a lilt, in a major, dorian, mixolydian or minor mode, built from folk figures (scale runs,
chord arpeggios, turns, repeated-note rolls) with cadences at the end of each half part; the
machine answers in its own track (chromatic pop-like notes two octaves away: if the data
preparation ever read them, the tests would see it) and the count-in clicks sit on channel 10.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from livejam.beatmap import BeatGrid
from livejam.midi.spec import note_off, note_on
from livejam.recording import Recorder

MODES = {"major": (0, 2, 4, 5, 7, 9, 11), "dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
         "minor": (0, 2, 3, 5, 7, 8, 10)}
TONICS = (60, 62, 64, 65, 67, 69, 70)  # C, D, E, F, G, A, B-flat
LOW, HIGH = -3, 11  # the tune's range in scale degrees
CLICK_CHANNEL = 9


def pitch(tonic: int, mode: tuple[int, ...], degree: int) -> int:
    octave, step = divmod(degree, 7)
    return tonic + 12 * octave + mode[step]


def figure(rng: np.random.Generator, at: int, n: int) -> list[int]:
    """`n` scale degrees from `at`: a run, an arpeggio, a turn or a roll."""
    kind = rng.choice(["run", "arp", "turn", "roll"], p=[0.35, 0.3, 0.2, 0.15])
    sign = 1 if rng.random() < 0.5 else -1
    if kind == "run":
        steps = [sign] * n
        if n > 3:
            steps[int(rng.integers(2, n))] = -sign  # no long straight scales
    elif kind == "arp":
        steps = [sign * int(rng.choice([2, 2, 3])) * (1 if rng.random() < 0.7 else -1) for _ in range(n)]
    elif kind == "turn":
        steps = [int(s) for s in rng.choice([-2, -1, 1, 2], n)]
    else:
        steps = [int(s) for s in rng.choice([0, 1, -1, 2], n, p=[0.4, 0.25, 0.25, 0.1])]
    out, d = [at], at
    for s in steps:
        d += s
        if len(out) >= 3 and (d == out[-2] and out[-1] == out[-3] or d == out[-1] == out[-2]):
            d = out[-1] + (1 if out[-1] < 4 else -1)  # no trills and no three of a note: move on
        d = 2 * LOW - d if d < LOW else 2 * HIGH - d if d > HIGH else d  # bounce off the range's ends
        out.append(d)
    out = out[1:]
    return out


def part(rng: np.random.Generator, per_bar: int, home: int) -> list[list[tuple[int, int]]]:
    """8 bars of (degree, eighths) notes: two 4-bar phrases, the second repeating the first's start."""
    def phrase_bars(start: int) -> list[list[tuple[int, int]]]:
        bars, d = [], start
        for _ in range(3):
            degrees = [d] + figure(rng, d, per_bar - 1)
            bars.append([(x, 1) for x in degrees])
            d = degrees[-1] + int(rng.choice([-1, 1, 2, -2]))
        return bars

    first = phrase_bars(home)
    half = first + [[(d, 1) for d in figure(rng, first[-1][-1][0], per_bar - 2)] + [(4, 2)]]  # half cadence on V
    second = first[:2] + phrase_bars(first[2][0][0])[2:]
    end = [[(d, 1) for d in figure(rng, second[-1][-1][0], per_bar - 3)] + [(0 if home < 5 else 7, 3)]]
    return half + second + end


def tune(rng: np.random.Generator) -> tuple[int, int, float, list[tuple[int, int]], int]:
    """(meter in beats, eighths a bar, bpm, notes as (pitch, eighths), pitches of the tonic)."""
    reel = rng.random() < 0.6
    meter, per_bar = (4, 8) if reel else (3, 6)
    bpm = float(rng.uniform(96, 116) if reel else rng.uniform(112, 132))
    mode = MODES[str(rng.choice(list(MODES)))]
    tonic = int(rng.choice(TONICS))
    a, b = part(rng, per_bar, 0), part(rng, per_bar, 7)
    notes = [(pitch(tonic, mode, d), n) for bars in (a, a, b, b) for bar in bars for d, n in bar]
    return meter, per_bar, bpm, notes, tonic


def session(path: Path, rng: np.random.Generator) -> Path:
    """One recorded session of a tune, as livejam run --bpm --count-in writes it."""
    meter, _, bpm, notes, tonic = tune(rng)
    spb = 60.0 / bpm
    t_start = 2.0  # the session started 2 s before the count-in
    beats = BeatGrid(t_start + spb * np.arange(4096), meter=meter)
    rec = Recorder(0.0, beats=beats, click_channel=CLICK_CHANNEL)
    for k in range(meter):  # the count-in: a bar of clicks before the first note
        t = beats.time_at(k)
        rec.record_machine(note_on(CLICK_CHANNEL, 76 if k == 0 else 77, 100), t)
        rec.record_machine(note_off(CLICK_CHANNEL, 76 if k == 0 else 77), t + 0.05)
    beat = float(meter)
    for i, (p, eighths) in enumerate(notes):
        lilt = 0.08 if i % 2 == 0 else -0.08  # long-short pairs of eighths
        on = beats.time_at(beat) + rng.normal(0.0, 0.008)
        dur = 0.5 * eighths * spb * (1 + (lilt if eighths == 1 else 0.0))
        vel = int(np.clip(rng.normal(96 if beat % 1 == 0 else 72, 6), 30, 127))
        rec.record_human(note_on(0, p, vel), on)
        rec.record_human(note_off(0, p), on + 0.9 * dur)
        beat += 0.5 * eighths
        if rng.random() < 0.05:  # the machine answers now and then, two octaves down, chromatic
            q = int(tonic - 24 + rng.integers(-6, 7))
            rec.record_machine(note_on(1, q, 70), on + 0.01)
            rec.record_machine(note_off(1, q), on + 0.4)
    return rec.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="folder for the session files")
    p.add_argument("--sessions", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.sessions < 1:
        p.error("--sessions must be at least 1")
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    for k in range(args.sessions):
        session(out / f"session-{k + 1:02d}.mid", rng)
    print(f"wrote {args.sessions} sessions to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
