"""One POP909 song for tools.quality: its parts and annotations, the scored window, the machine's
part from a virtual run, and the scores (livejam.measure.music and .implied) of any part."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from livejam.beatmap import BeatGrid
from livejam.config import DaemonConfig
from livejam.dispatch import build_performer
from livejam.events import Note
from livejam.harmony import chord_tones, parse_chord, root_pc, split_id
from livejam.measure import implied as im
from livejam.measure import music as mu
from livejam.midi.files import read_midi_tracks

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor plus the harmonic leading tone
PHRASE_REST_S = 0.6  # a call ends at a rest this long in the melody ...
# ... or, since POP909 writes its melodies legato (a note lasts to the next onset, so rests are
# rare), at a note this long: a phrase's held last note
PHRASE_NOTE_S = 1.2
CALL_S = (4.0, 16.0)  # ... and is one when it lasts this long


class Song:
    """One POP909 song's parts and annotations, scored over the window [lo, hi): from the melody's
    first note, `seconds` long (0: to the melody's last note)."""

    def __init__(self, folder: Path, seconds: float = 0.0):
        self.id = folder.name
        self.chord_file = folder / "chord_midi.txt"
        self.beats = BeatGrid.from_file(folder / "beat_midi.txt")
        self.chords = []  # (start, end, chord id; 0 = N)
        for line in self.chord_file.read_text().splitlines():
            start, end, label = line.split("\t")
            self.chords.append((float(start), float(end), parse_chord(label.strip())))
        self.keys = []  # (start, end, (tonic pitch class, minor))
        for line in (folder / "key_audio.txt").read_text().splitlines():
            start, end, label = line.split("\t")
            root, mode = label.strip().split(":")
            self.keys.append((float(start), float(end), (root_pc(root), mode.startswith("min"))))
        tracks = dict(read_midi_tracks(folder / f"{folder.name}.mid"))
        melody = tracks.get("MELODY", [])
        self.lo = min(n.start for n in melody)
        self.hi = self.lo + seconds if seconds > 0 else max(n.end for n in melody)
        within = (lambda n: self.lo <= n.start < self.hi)  # noqa: E731
        self.melody = [n for n in melody if within(n)]
        self.piano = [n for n in tracks.get("PIANO", []) if within(n)]

    @property
    def seconds(self) -> float:
        return self.hi - self.lo

    def scale(self, t: float) -> frozenset[int] | None:
        key = mu.span_at(self.keys, t, None)
        if key is None:
            return None
        return frozenset((key[0] + i) % 12 for i in (MINOR if key[1] else MAJOR))

    def tonic(self, t: float) -> int | None:
        key = mu.span_at(self.keys, t, None)
        return None if key is None else key[0]

    def lefthand(self) -> list[Note]:
        """The piano notes below the piano part's median pitch: a left hand."""
        if not self.piano:
            return []
        median = float(np.median([n.pitch for n in self.piano]))
        return [n for n in self.piano if n.pitch < median]

    def calls(self) -> list[list[Note]]:
        """The melody's phrases in the window that last CALL_S: split at rests >= PHRASE_REST_S and
        after notes whose onset is PHRASE_NOTE_S or more before the next onset."""
        phrases, current, end = [], [], 0.0
        for n in sorted(self.melody, key=lambda n: n.start):
            if current and (n.start - end >= PHRASE_REST_S or n.start - current[-1].start >= PHRASE_NOTE_S):
                phrases.append(current)
                current = []
            end = max(end, n.end) if current else n.end
            current.append(n)
        if current:
            phrases.append(current)
        lo, hi = CALL_S
        return [p for p in phrases if lo <= max(n.end for n in p) - p[0].start <= hi]

    def score(self, notes: list[Note], against: list[Note] | None = None, leaned=None, max_note_s: float = 4.0
              ) -> dict:
        """Every measure of `notes` over the window, against the melody (or `against`); with
        `leaned` ((time, chord id) at each note-on: the chord the performer said it played in)
        also how often that chord agrees with the annotation."""
        lo, hi = self.lo, self.hi
        out = mu.texture(notes, self.melody if against is None else against, self.chords, self.beats, lo, hi,
                         max_note_s)
        onsets = mu.onsets_in(notes, lo, hi)
        out["in_key"] = mu.ratio(sum(self._in_key(n) for n in onsets), len(onsets))
        out["implied_root"] = im.implied_root(notes, self.chords, self.beats.times, lo, hi)
        if leaned is not None:
            out.update(self.leaned(leaned))
        return out

    def _in_key(self, n: Note) -> bool:
        scale = self.scale(n.start)
        return scale is None or (n.pitch % 12) in scale

    def leaned(self, played: list[tuple[float, int]]) -> dict:
        """`leaned_root`: the chord the performer plays in at its note-ons has the annotated root;
        `chord_match`: ... is the annotated chord or nests with it (C in Cmaj7, C in Am7). The
        performer's N counts as wrong; note-ons under an annotated N are not counted."""
        match = root = total = 0
        for t, played_id in played:
            annotated = mu.chord_at(self.chords, t)
            if not annotated or not self.lo <= t < self.hi:
                continue
            total += 1
            a, b = chord_tones(annotated), chord_tones(played_id)
            match += bool(b) and (a <= b or b <= a)
            root += bool(b) and split_id(played_id)[0] == split_id(annotated)[0]
        return {"chord_match": mu.ratio(match, total), "leaned_root": mu.ratio(root, total)}

    def baselines(self) -> dict[str, float | None]:
        """implied_root of the chord guesses that play nothing (livejam.measure.implied)."""
        times, lo, hi = self.beats.times, self.lo, self.hi
        return {"tonic": im.root_right(im.tonic_guess(self.keys, self.chords, times, lo, hi)),
                "reader2": im.root_right(im.reader2_guess(self.melody, self.chords, times, lo, hi)),
                "late1": im.root_right(im.late1_guess(self.chords, times, lo, hi))}

    def random_in_key(self, count: int, rng: np.random.Generator) -> list[Note]:
        """`count` notes at uniform random times over the window, random pitches of the key."""
        out = []
        for t in np.sort(rng.uniform(self.lo, self.hi, count)):
            scale = sorted(self.scale(t) or MAJOR)
            pitch = 48 + int(rng.integers(0, 2)) * 12 + int(rng.choice(scale))
            out.append(Note(float(t), float(t) + 0.25, pitch, 80))
        return out

    def score_call(self, call: list[Note], answer: list[Note], config: DaemonConfig) -> dict:
        """One call-mode answer: `length_ratio` (answer, first note-on to last note-off, over the
        call, likewise), `length_ok` (the answer within 0.5x..2x of the call's length clamped to
        [min_answer_s, max_answer_s]), `single_line` (livejam.measure.music), the answer's last
        note (the latest onset, the highest at a tie) a tone of the annotated chord at the call's
        end (`last_chord_tone`; None under N) and the key's tonic (`last_tonic`), and the answer's
        `in_key` and `on_grid`."""
        call_lo, call_hi = call[0].start, max(n.end for n in call)
        call_s = call_hi - call_lo
        if not answer:
            return {"answered": 0.0, "length_ratio": 0.0, "length_ok": 0.0}
        a_lo, a_hi = min(n.start for n in answer), max(n.end for n in answer)
        cfg = config.performer
        target = min(max(call_s * cfg.answer_length_ratio, cfg.min_answer_s), cfg.max_answer_s)
        last = max(answer, key=lambda n: (n.start, n.pitch))
        chord = mu.chord_at(self.chords, call_hi - 0.05)
        tonic = self.tonic(call_hi - 0.05)
        return {"answered": 1.0, "length_ratio": (a_hi - a_lo) / call_s,
                "length_ok": float(0.5 * target <= a_hi - a_lo <= 2.0 * target),
                "single_line": mu.single_line(answer, a_lo, a_hi),
                "last_chord_tone": float(last.pitch % 12 in chord_tones(chord)) if chord else None,
                "last_tonic": float(last.pitch % 12 == tonic) if tonic is not None else None,
                "in_key": mu.ratio(sum(self._in_key(n) for n in answer), len(answer)),
                "on_grid": mu.on_grid(answer, self.beats, a_lo, a_hi + 1e-9)}


def simulate(song: Song, config: DaemonConfig, human: list[Note], tail_s: float = 2.0
             ) -> tuple[list[Note], int, list[tuple[float, int]] | None]:
    """The machine's notes when `human` plays, on the song's annotated beats: what `livejam
    simulate --human-track ... --beats beat_midi.txt` does. Also the number of notes left sounding
    at the end and, for the neural performer, the chord it plays in at each of its note-ons."""
    from livejam.events import timed_to_notes
    from livejam.simulate import human_events, run_virtual

    performer = build_performer(config, strict=True)
    performer.set_beats(song.beats)
    leaned = None
    if config.performer.kind == "neural":  # its `chord` is the one it plays in when it emits
        leaned, emit = [], performer._emit

        def emit_noting_chord(note):
            if note.velocity > 0:
                leaned.append((note.time, int(performer.chord)))
            emit(note)

        performer._emit = emit_noting_chord
    run = run_virtual(human_events(human), performer, config, tail_s=tail_s)
    return timed_to_notes(run.machine_notes()), int(run.summary["sounding_at_end"]), leaned


def with_chart(config: DaemonConfig, path: Path) -> DaemonConfig:
    """`config` with the song's annotated chords as its chord chart (`--chords chord_midi.txt`)."""
    return replace(config, chords=replace(config.chords, chart=str(path)))
