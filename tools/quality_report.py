"""The tables and the bars of tools.quality: means over songs, seed spreads, MET/MISSED lines."""
from __future__ import annotations

import numpy as np

TEXTURE = ("notes_per_s", "nps_vs_piano", "on_grid", "grid_vs_piano", "clash_time", "tritone_time", "onset_clash",
           "machine_onset_clash", "voices", "median_note_s", "capped_share", "carried", "carried_wrong")
HARMONY = ("in_key", "chord_tone", "implied_root", "leaned_root", "chord_match")
REVERSE = ("chord_tone", "melody_chord_tone", "notes_per_s", "melody_notes_per_s", "nps_vs_melody", "on_grid",
           "melody_on_grid", "grid_vs_melody")
CALL = ("calls", "answered", "length_ratio", "length_ok", "single_line", "last_chord_tone", "last_tonic", "in_key",
        "on_grid")
MEMORY = ("implied_root", "memory_seen", "memory_new", "memory_gain", "memory_beats_seen", "memory_beats_new")
SHORT = {"notes_per_s": "notes/s", "nps_vs_piano": "nps/piano", "grid_vs_piano": "grid/piano",
         "tritone_time": "tritone_t", "machine_onset_clash": "m_onset_cl", "median_note_s": "median_s",
         "capped_share": "capped", "carried_wrong": "carr_wrong", "implied_root": "implied", "leaned_root": "leaned",
         "melody_chord_tone": "mel_ct", "melody_notes_per_s": "mel_nps", "nps_vs_melody": "nps/mel",
         "melody_on_grid": "mel_grid", "grid_vs_melody": "grid/mel", "length_ratio": "len_ratio",
         "last_chord_tone": "last_ct", "memory_beats_seen": "beats_seen", "memory_beats_new": "beats_new",
         "chord_match": "ch_match"}


def mean_of(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(per_song: list[dict]) -> dict:
    """Per row: the mean over songs of each measure (songs where it is None left out), and
    `sounding_at_end` summed."""
    rows = [r for cells in per_song for r in cells if r != "song"]
    mean = {}
    for row in dict.fromkeys(rows):
        cells = [s[row] for s in per_song if row in s]
        keys = dict.fromkeys(k for c in cells for k in c)
        mean[row] = {k: mean_of([c.get(k) for c in cells]) for k in keys if k != "sounding_at_end"}
        mean[row]["sounding_at_end"] = int(sum(c.get("sounding_at_end", 0) for c in cells))
    return mean


def seed_spread(mean: dict, seeds: list[int]) -> dict:
    """The standard deviation over seeds of the duet row's means (rows `duet@SEED`)."""
    runs = [mean[f"duet@{s}"] for s in seeds if f"duet@{s}" in mean]
    if len(runs) < 2:
        return {}
    keys = dict.fromkeys(k for r in runs for k in r)
    out = {}
    for k in keys:
        values = [r.get(k) for r in runs]
        if all(v is not None for v in values):
            out[k] = float(np.std(values))
    return out


def _cell(value, width: int) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, int):
        return f"{int(value):>{width}}"
    return f"{value:>{width}.3f}"


def table(mean: dict, rows: list[str], cols: tuple[str, ...], spread: dict | None = None, extra=("sounding_at_end",)
          ) -> list[str]:
    cols = cols + tuple(extra)
    width = 11
    lines = [f"{'':9}" + "".join(f"{SHORT.get(c, c.replace('sounding_at_end', 'sounding'))[:width - 1]:>{width}}"
                                 for c in cols)]
    for row in rows:
        if row not in mean:
            continue
        lines.append(f"{row:9}" + "".join(_cell(mean[row].get(c), width) for c in cols))
        if row == "duet" and spread:
            lines.append(f"{'  ± seeds':9}" + "".join(_cell(spread.get(c), width) if c in spread else " " * width
                                                      for c in cols))
    return lines


def _times(a, b):
    return a / b if a is not None and b else None


def _check(name: str, value, ok) -> str:
    shown = "-" if value is None else f"{value:.3f}"
    return f"  {name:<58} {shown:>8}  {'MET' if value is not None and ok(value) else 'MISSED'}"


def verdicts(mean: dict) -> list[str]:
    """The bars of issues 17 (play like a pianist) and 16 (chords it can act on), for the rows
    that were run."""
    out = []
    piano = mean.get("piano", {})
    d = mean.get("duet")
    if d:
        out += ["duet (issue 17):",
                _check("clash time <= 1.5x the piano's", _times(d.get("clash_time"), piano.get("clash_time")),
                       lambda v: v <= 1.5),
                _check("clashes at melody onsets <= 1.5x the piano's",
                       _times(d.get("onset_clash"), piano.get("onset_clash")), lambda v: v <= 1.5),
                _check("voices sounding 2..3.5", d.get("voices"), lambda v: 2.0 <= v <= 3.5),
                _check("median note length <= 0.7 s", d.get("median_note_s"), lambda v: v <= 0.7),
                _check("notes carried across a chord change <= 1.0 per change", d.get("carried"), lambda v: v <= 1.0),
                _check("16th grid >= 0.9x the piano's", d.get("grid_vs_piano"), lambda v: v >= 0.9),
                _check("notes/s 0.6x..1.5x the piano's", d.get("nps_vs_piano"), lambda v: 0.6 <= v <= 1.5),
                _check("nothing sounding at the end", float(d["sounding_at_end"]), lambda v: v == 0),
                "duet (issue 16):",
                _check("implied root >= 0.45", d.get("implied_root"), lambda v: v >= 0.45),
                _check("leaned root >= implied root (difference)",
                       None if d.get("leaned_root") is None or d.get("implied_root") is None
                       else d["leaned_root"] - d["implied_root"], lambda v: v >= 0),
                _check("chord tones >= 0.70", d.get("chord_tone"), lambda v: v >= 0.70)]
    if "memory" in mean:
        out += ["memory (issue 16):", _check("root right where the progression came before, minus where not, >= 0.10",
                                             mean["memory"].get("memory_gain"), lambda v: v >= 0.10)]
    if "chart" in mean:
        c = mean["chart"]
        out += ["chart (issue 16):", _check("chord tones >= 0.93", c.get("chord_tone"), lambda v: v >= 0.93),
                _check("clash time <= 1.3x the piano's", _times(c.get("clash_time"), piano.get("clash_time")),
                       lambda v: v <= 1.3)]
    if "lefthand" in mean:
        out += ["lefthand (issue 16):",
                _check("implied root >= 0.70", mean["lefthand"].get("implied_root"), lambda v: v >= 0.70)]
    if "reverse" in mean:
        r = mean["reverse"]
        out += ["reverse (issue 17):",
                _check("chord tones >= the melody's (difference)",
                       None if r.get("chord_tone") is None or r.get("melody_chord_tone") is None
                       else r["chord_tone"] - r["melody_chord_tone"], lambda v: v >= 0),
                _check("notes/s 0.6x..1.5x the melody's", r.get("nps_vs_melody"), lambda v: 0.6 <= v <= 1.5),
                _check("16th grid >= 0.9x the melody's", r.get("grid_vs_melody"), lambda v: v >= 0.9)]
    if "call" in mean:
        c = mean["call"]
        out += ["call (issue 17):",
                _check("answer length 0.5x..2x the call", c.get("length_ratio"), lambda v: 0.5 <= v <= 2.0),
                _check("single-line share >= 0.8", c.get("single_line"), lambda v: v >= 0.8),
                _check("last note a chord tone >= 0.6 of answers", c.get("last_chord_tone"), lambda v: v >= 0.6)]
    return out


def format_result(result: dict) -> str:
    mean, rows = result["mean"], result["rows"]
    spread = result.get("seed_spread") or {}
    span = f"the first {result['seconds']:g} s of each" if result["seconds"] else "whole songs"
    lines = [f"{len(result['songs'])} held-out POP909 songs ({span}): {' '.join(result['songs'])}",
             f"settings: {result['settings']}; model: {result['model']}; seeds: {result['seeds']}", ""]
    played = [r for r in rows if r not in ("tonic", "reader2", "late1", "call", "memory")]
    lines += ["texture (the part against the human's; clash measures against the melody):",
              *table(mean, played, TEXTURE, spread), ""]
    lines += ["harmony (implied: the chord its sounding notes imply each beat; leaned: the chord it says it plays in):",
              *table(mean, [r for r in rows if r not in ("call", "memory")], HARMONY, spread, extra=()), ""]
    if "reverse" in mean:
        lines += ["reverse (human = PIANO, the machine plays the line; mel_ = the real MELODY):",
                  *table(mean, ["reverse"], REVERSE), ""]
    if "call" in mean:
        lines += ["call (the call alone, a phrase of the melody; the answer's measures):",
                  *table(mean, ["call"], CALL), ""]
    if "memory" in mean:
        lines += [f"memory (duet over the first {result['memory_seconds']:g} s; beats from 90 s on):",
                  *table(mean, ["memory"], MEMORY, extra=()), ""]
    lines += ["bars:", *verdicts(mean)]
    return "\n".join(lines)
