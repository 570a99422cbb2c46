"""A chord chart: the chords the user gives (`--chords`, the OSC address /livejam/chords), as a value.

Two kinds, one class:

- **A beat chart**, from text: `"Am F C G"` is one chord a bar, `"Am:2 F:2 C:4"` gives beats;
  `|` bar lines are allowed and ignored, `N` or `-` is no chord, `#` starts a comment, several
  lines are one chart. It loops for ever. Chart beat 0 is beat 0 of the session's BeatMap (the
  first downbeat). A chord without `:beats` lasts to the next bar line of the map (a whole bar
  when the chart is on the bar lines), so a meter change moves the changes with it; in free time
  (no bar) bars are 4 beats counted from beat 0. A number after the last colon is always a
  duration: `C:7` is C for 7 beats (write `C7` for the seventh chord).
- **A seconds chart**, from POP909's `chord_midi.txt` (`start<TAB>end<TAB>label` per line, seconds
  on the session's clock): absolute times, no loop, N outside every span; the beat map is ignored.

Symbols in the common spellings (`Am`, `A:min`, `C7`, `Cmaj7`, `Dm7`, `Bb`, `F#m7b5`, `Gsus4`,
`Caug`, `Bdim`, `C/E`: the bass is dropped, as livejam.harmony drops inversions) map to
livejam.harmony's chord ids. Anything else is a ValueError of one line naming the token.
Pure python: the CLI, the OSC thread and the performers import this.
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from livejam.harmony import INTERVALS, NO_CHORD, PITCH_NAMES, QUALITIES, chord_id, quality_index, root_pc, split_id

FREE_BAR_BEATS = 4  # bars in free time (a map with no bar information)
HINT = "(try Am, C7, F#m7b5, N)"

# Lead-sheet suffixes -> a quality of livejam.harmony.QUALITIES. Harte's names (`min7`, `hdim7`,
# `sus4(b7)`) are read by harmony.quality_index; extensions and alterations a chord id cannot
# hold (`7b9`, `maj7#11`, `7(b9,13)`) are stripped from the end until a known suffix is left.
SUFFIXES = {
    "": "maj", "M": "maj", "maj": "maj", "m": "min", "mi": "min", "min": "min", "-": "min",
    "dim": "dim", "o": "dim", "°": "dim", "aug": "aug", "+": "aug", "sus2": "sus2", "sus": "sus4",
    "sus4": "sus4", "7": "7", "dom7": "7", "maj7": "maj7", "M7": "maj7", "ma7": "maj7", "Δ": "maj7",
    "Δ7": "maj7", "j7": "maj7", "m7": "min7", "mi7": "min7", "min7": "min7", "-7": "min7",
    "m7b5": "hdim7", "m7-5": "hdim7", "min7b5": "hdim7", "-7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7",
    "dim7": "dim7", "o7": "dim7", "°7": "dim7", "6": "maj6", "maj6": "maj6", "m6": "min6", "min6": "min6",
    "7sus4": "7sus4", "7sus": "7sus4", "9sus4": "7sus4", "mmaj7": "minmaj7", "mM7": "minmaj7",
    "m(maj7)": "minmaj7", "minmaj7": "minmaj7", "-maj7": "minmaj7", "9": "7", "11": "7", "13": "7",
    "maj9": "maj7", "M9": "maj7", "maj13": "maj7", "m9": "min7", "m11": "min7", "m13": "min7", "add9": "maj",
    "add2": "maj", "madd9": "min", "2": "sus2", "5": "maj", "6/9": "maj6", "69": "maj6", "aug7": "7", "+7": "7",
}
# the symbol a chord id is written back as (chord_symbol, ChordChart.text): the first spelling above
_WRITTEN = {"maj": "", "min": "m", "dim": "dim", "aug": "aug", "sus2": "sus2", "sus4": "sus4", "7": "7",
            "maj7": "maj7", "min7": "m7", "hdim7": "m7b5", "dim7": "dim7", "maj6": "6", "min6": "m6",
            "7sus4": "7sus4", "minmaj7": "mmaj7"}
assert set(_WRITTEN) == set(QUALITIES) == set(INTERVALS)
_NO_CHORD = {"N", "-", "NC", "N.C.", "X"}
_ROOT = re.compile(r"^([A-Ga-g])([#b♯♭]?)(.*)$")
_ALTERATION = re.compile(r"(\([^()]*\)|add\d+|[b#+\-]\d+)$")  # stripped from the end of a suffix
_BASS = re.compile(r"^([A-Ga-g][#b]?|[b#]*\d+)$")  # after `/`: a note (C/E) or a Harte degree (C:maj/3)
_COMMENT = re.compile(r"(^|\s)#.*$")  # `#` at a word's start: F#m is no comment


def _quality(suffix: str) -> str | None:
    s = suffix
    while True:
        q = SUFFIXES.get(s)
        if q is None and s[:3].lower() in ("maj", "min", "dim", "aug", "sus", "add"):
            q = SUFFIXES.get(s.lower())
        if q is not None:
            return q
        m = _ALTERATION.search(s)
        if not m or m.start() == 0:
            return None
        s = s[:m.start()]


def parse_symbol(token: str) -> int | None:
    """One chord symbol (`Am`, `A:min`, `F#m7b5`, `C/E`, `N`) -> chord id; None if it is none."""
    token = token.strip()
    if token in _NO_CHORD:
        return NO_CHORD
    head, slash, bass = token.partition("/")
    if slash and head.endswith("6") and bass == "9":  # C6/9 is a chord, not a bass note
        head, slash = head + "/9", ""
    if slash and not _BASS.match(bass):
        return None
    m = _ROOT.match(head)
    if not m:
        return None
    root = root_pc(m.group(1) + m.group(2).replace("♯", "#").replace("♭", "b"))
    rest = m.group(3)
    if rest.startswith(":"):  # Harte: A:min, Bb:sus4(b7)
        q = quality_index(rest[1:] or "maj")
        return None if q is None else chord_id(root, q)
    quality = _quality(rest)
    return None if quality is None else chord_id(root, QUALITIES.index(quality))


def chord_symbol(cid: int) -> str:
    """Chord id -> a lead-sheet symbol (`Am`, `F#m7b5`, `N`) that parse_symbol reads back."""
    parts = split_id(cid)
    if parts is None:
        return "N"
    return PITCH_NAMES[parts[0]] + _WRITTEN[QUALITIES[parts[1]]]


@dataclass(frozen=True)
class ChordChart:
    """A parsed chart (see the module doc). Build with `parse` or `load`; ask it with `at`.

    `chords[i]` lasts `beats[i]` beats (None: to the next bar line) in a beat chart; a seconds
    chart has `times` (change times, increasing) and `chords` (the chord from each time on)."""

    chords: tuple[int, ...]
    beats: tuple[float | None, ...] = ()
    times: tuple[float, ...] = ()
    name: str = ""  # the file it came from, for display
    # where the last `at` found the loop: (beat map, generation, loop start beat); only the
    # performer thread calls `at`, so the walk along bar lines is not redone from beat 0 each time
    _cursor: list = field(default_factory=list, compare=False, repr=False, hash=False)

    @property
    def seconds(self) -> bool:
        """True for an absolute-time chart (POP909), which ignores the beat map."""
        return bool(self.times)

    # --- reading ------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: str) -> "ChordChart":
        """`spec` names an existing file: its contents; otherwise `spec` is the chart's text."""
        path = Path(spec)
        try:
            is_file = len(spec) < 4096 and "\n" not in spec and path.is_file()
        except OSError:  # a name too long for the file system: it is text
            is_file = False
        if not is_file:
            try:
                return cls.parse(spec)
            except ValueError:
                words = spec.split()
                if len(words) == 1 and ("/" in spec or "\\" in spec or spec.endswith(".txt")):
                    raise ValueError(f"{spec}: no such chart file, and not a chord {HINT}") from None
                raise
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{spec}: cannot read the chart file ({getattr(e, 'strerror', None) or e})") from None
        return cls.parse(text, name=spec)

    @classmethod
    def parse(cls, text: str, name: str = "") -> "ChordChart":
        """Chart text (or a file's contents; `name` then prefixes errors with FILE:LINE)."""
        lines = [(n, _COMMENT.sub("", line).strip()) for n, line in enumerate(text.splitlines(), 1)]
        lines = [(n, line) for n, line in lines if line]
        if not lines:
            raise ValueError(f"{name or 'the chart'}: no chords in it")
        if _is_seconds_line(lines[0][1]):
            return cls._parse_seconds(lines, name)
        chords, beats, position = [], [], 0
        for number, line in lines:
            for token in line.replace("|", " ").split():
                position += 1
                cid, length = _parse_token(token)
                if cid is None:
                    where = f"{name}:{number}: " if name else ""
                    why = f" is not a chord {HINT}" if length is None else ": the length must be a number of beats > 0"
                    raise ValueError(f'{where}"{token}" at position {position}{why}')
                chords.append(cid)
                beats.append(length or None)
        if not chords:
            raise ValueError(f"{name or 'the chart'}: no chords in it")
        return cls(tuple(chords), tuple(beats), name=name)

    @classmethod
    def _parse_seconds(cls, lines, name: str) -> "ChordChart":
        spans = []
        for number, line in lines:
            cols = line.split()
            cid = parse_symbol(cols[2]) if len(cols) == 3 and _is_seconds_line(line) else None
            if cid is None:
                where = f"{name}:{number}" if name else f"line {number}"
                raise ValueError(f"{where}: not a chord line (start end label, e.g. 1.5 3.0 A:min): {line[:40]!r}")
            spans.append((float(cols[0]), float(cols[1]), cid))
        times, chords, end = [], [], -math.inf
        for start, stop, cid in sorted(spans):
            if start > end and chords and chords[-1] != NO_CHORD:  # a gap between spans: no chord
                times.append(end)
                chords.append(NO_CHORD)
            if not chords or chords[-1] != cid:
                times.append(start)
                chords.append(cid)
            end = max(end, stop)
        if chords[-1] != NO_CHORD:  # after the last span: no chord
            times.append(end)
            chords.append(NO_CHORD)
        return cls(tuple(chords), times=tuple(times), name=name)

    # --- asking -------------------------------------------------------------------------
    def at(self, beats, t: float) -> tuple[int, float | None]:
        """(the chord id sounding at time t, the time of the next change or None if it never
        changes). `beats`: the session's BeatMap (livejam.beatmap), None for free time from t = 0.
        Called from one thread (the performer's): it keeps a cursor."""
        if self.seconds:
            i = bisect.bisect_right(self.times, t) - 1
            cid = self.chords[i] if i >= 0 else NO_CHORD
            j = i + 1
            while j < len(self.times) and self.chords[j] == cid:  # a chart that starts with N
                j += 1
            return cid, (self.times[j] if j < len(self.times) else None)
        if beats is None:
            from livejam.beatmap import FreeTime

            beats = FreeTime()
        b = beats.beat_at(t)
        if b < 0:  # before the chart starts (a count-in)
            return NO_CHORD, beats.time_at(0.0)
        steps = self._walk(beats, b)
        while True:  # the item sounding at b (each step moves on by > 0 beats)
            i, start, end = next(steps)
            if end > b + 1e-9:  # at a change time (a rounding hair before it too): the new chord
                break
        cid = self.chords[i]
        for _ in range(len(self.chords)):  # the next different chord, at most one loop on
            j, start, _ = next(steps)
            if self.chords[j] != cid:
                return cid, beats.time_at(start)
        return cid, None

    def name_at(self, beats, t: float) -> str:
        return chord_symbol(self.at(beats, t)[0])

    def _walk(self, beats, b: float):
        """(index, start beat, end beat) of each item from the loop pass that holds beat b on."""
        n = len(self.chords)
        if all(x is not None for x in self.beats):  # beats only: the loop's length is fixed
            length = sum(self.beats)
            loop = math.floor(b / length) * length
        else:
            key = (beats, beats.generation)
            cur = self._cursor
            loop = cur[2] if cur and cur[0] is key[0] and cur[1] == key[1] and cur[2] <= b else 0.0
        start, i, passed = loop, 0, False
        while True:
            length = self.beats[i]
            if length is None:  # to the next bar line of the meter in force there
                bar = beats.bar_at(start + 1e-6)
                pos, per_bar = bar if bar is not None else ((start + 1e-6) % FREE_BAR_BEATS, FREE_BAR_BEATS)
                length = per_bar - pos + 1e-6
            end = start + length
            if not passed and end > b + 1e-9:  # remember the loop start that holds b
                passed = True
                if None in self.beats:
                    self._cursor[:] = [beats, beats.generation, loop]
            yield i, start, end
            start, i = end, i + 1
            if i == n:
                i, loop = 0, end

    @property
    def text(self) -> str:
        """The chart written back (`Am F C:2 G:2`), or a summary of a seconds chart."""
        if self.seconds:
            changes = sum(1 for c in self.chords if c != NO_CHORD)
            return f"{self.name or 'chart'}: {changes} chords, {self.times[0]:.1f}-{self.times[-1]:.1f} s"
        return " ".join(chord_symbol(c) + ("" if b is None else f":{b:g}") for c, b in zip(self.chords, self.beats))

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class ChartChange:
    """A new chart (None: none) on its way to the performer thread: a control thread (OSC) parses
    the chart and enqueues this on the input queue; the Dispatcher hands it to the performer."""

    chart: ChordChart | None


def _is_seconds_line(line: str) -> bool:
    cols = line.split()
    try:
        return len(cols) >= 2 and math.isfinite(float(cols[0])) and math.isfinite(float(cols[1]))
    except ValueError:
        return False


def _parse_token(token: str) -> tuple[int | None, float | None]:
    """`Am` -> (id, None); `Am:2` -> (id, 2.0); (None, None) not a chord; (None, 0.0) a bad length."""
    head, colon, tail = token.rpartition(":")
    if colon and head:
        try:
            length = float(tail)
        except ValueError:
            length = None
        if length is not None:
            cid = parse_symbol(head)
            if cid is None:
                return None, None
            return (cid, length) if math.isfinite(length) and length > 0 else (None, 0.0)
    return parse_symbol(token), None
