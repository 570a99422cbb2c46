"""The status screen's picture: a Snapshot -> a rich renderable (the plain lines are plain.py, which
needs no rich). Pure: no I/O, no threads, so tests render it to text."""
from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from livejam.config.controls import BY_NAME, CONTROLS, KNOBS
from livejam.stage.ui.plain import fmt as _fmt
from livejam.stage.ui.status import HUMAN, Snapshot

COLOURS = {HUMAN: "bold blue", "machine": "bold dark_orange", "both": "bold magenta"}
GLYPHS = {HUMAN: "█", "machine": "▒", "both": "▓"}  # apart without colour too (captures, colour-blind eyes)
NAMES = "C C# D D# E F F# G G# A A# B".split()
# the keys' legend, from the controls table: the mode and the knobs, then the triggers
KEYS = ("  ".join([f"[{BY_NAME['mode'].keys}] mode"] + [f"[{k.keys[0]}/{k.keys[1]}] {k.name} -/+" for k in KNOBS if k.keys])
        + "\n" + "  ".join(["[e] end phrase"] + [f"[{c.keys}] {c.name}" for c in CONTROLS if c.kind == "trigger"]
                            + ["[q] quit"]))


def note_name(p: int) -> str:
    return f"{NAMES[p % 12]}{p // 12 - 1}"


def roll(snap: Snapshot, width: int = 64, rows: int = 14, span_s: float = 8.0) -> Text:
    """A scrolling piano roll of the last `span_s` seconds: one row per pitch (the busiest `rows`
    adjacent pitches), time running left to right, now at the right edge."""
    t1, t0 = snap.t, snap.t - span_s
    notes = [n for n in snap.notes if (n.end is None or n.end >= t0) and n.start <= t1]
    if notes:
        lo = min(n.pitch for n in notes)
        hi = max(n.pitch for n in notes)
        if hi - lo + 1 > rows:  # too wide: centre the window on the notes' median
            mid = sorted(n.pitch for n in notes)[len(notes) // 2]
            lo, hi = mid - rows // 2, mid - rows // 2 + rows - 1
    else:
        lo, hi = 60 - rows // 2, 60 - rows // 2 + rows - 1
    grid: dict[tuple[int, int], str] = {}
    for n in notes:
        if not lo <= n.pitch <= hi:
            continue
        c0 = max(0, int((n.start - t0) / span_s * width))
        c1 = min(width - 1, int(((n.end if n.end is not None else t1) - t0) / span_s * width))
        for c in range(c0, max(c0, c1) + 1):
            key = (n.pitch, c)
            grid[key] = n.who if grid.get(key, n.who) == n.who else "both"
    text = Text()
    for p in range(hi, lo - 1, -1):
        text.append(f"{note_name(p):>4} ", style="dim" if p % 12 else "bold")
        blank = "·" if p % 12 in (0, 5) else " "
        run_who, run_len = grid.get((p, 0)), 0
        for c in range(width + 1):  # one span per run of equal cells: rich's cost is per span
            who = grid.get((p, c)) if c < width else "end"
            if who == run_who:
                run_len += 1
                continue
            text.append(blank * run_len if run_who is None else GLYPHS[run_who] * run_len,
                        style="grey30" if run_who is None else COLOURS[run_who])
            run_who, run_len = who, 1
        text.append("\n")
    text.append(f"     -{span_s:g} s", style="dim")
    text.append(" " * max(1, width - 12) + "now\n", style="dim")
    text.append("     ")
    text.append("█ you", style=COLOURS[HUMAN])
    text.append("   ")
    text.append("▒ livejam", style=COLOURS["machine"])
    return text


def _line(label: str, *cells: str, cell: int = 28) -> str:
    """A label and cells padded to `cell` visible characters (markup does not count)."""
    out = f"[bold]{label:<12}[/]"
    for c in cells[:-1]:
        out += c + " " * max(1, cell - len(Text.from_markup(c).plain))
    return out + (cells[-1] if cells else "")


def chord_cell(snap: Snapshot) -> str:
    """The chord the machine plays in and where it came from (chart > heard > predicted)."""
    return f"chord [bold]{snap.chord}[/] ({snap.chord_source or 'none'})"


def render(snap: Snapshot, extra: str = "", width: int = 64, span_s: float = 8.0):
    """The whole screen. Plain markup lines, not a rich Table: a table's layout cost ~18 ms a frame here."""
    c = snap.controls
    tempo = f"{snap.bpm:g} BPM" if snap.bpm else "free time"
    if snap.beat is not None:
        tempo += f", beat {snap.beat:.1f}"
    rng = c.get("range") or (None, None)
    lat, step, k = snap.lateness_ms, snap.step_ms, snap.counters
    lines = [
        _line("livejam", f"{snap.t:.1f} s  {snap.engine.replace('Performer', '')}", f"mode [bold]{snap.mode}[/]", f"tempo {tempo}",
              f"key {c.get('key', '-')}"),
        _line("controls", f"temperature {_fmt(c.get('temperature'))}", f"density {_fmt(c.get('density'))}",
              f"range {note_name(rng[0]) if rng[0] is not None else '-'}.."
              f"{note_name(rng[1]) if rng[1] is not None else '-'}"),
        _line("", f"harmony {_fmt(c.get('harmony'))}", f"grid {_fmt(c.get('grid'))}", chord_cell(snap)),
        _line("last minute", f"step p50 {_fmt(step['p50'], ' ms')} p99 {_fmt(step['p99'], ' ms')}",
              f"lateness p50 {_fmt(lat['p50'], ' ms')} p99 {_fmt(lat['p99'], ' ms')}", f"({lat['n']} events)"),
        _line("counters", f"in {k['in']} heard {k['heard']} played {k['played']}",
              f"sent {k['sent']} late {k['late']} dropped {k['dropped']}",
              f"cancels {k['cancels']} watchdog {k['watchdog']} sounding {k['sounding']}"),
        # input lost before the performer: the queue's overflow, and JACK's skipped periods (midi/xruns.py)
        _line("", f"overflow {k['overflow']}", f"xruns {k['xruns']}"),
    ]
    if snap.sound is not None:
        bars = round(min(1.0, snap.sound["level"] * 2) * 20)  # a note at full velocity peaks near 0.5
        lines.append(_line("sound", "[green]" + "▮" * bars + "[/]" + "▯" * (20 - bars),
                           f"blocks {snap.sound['blocks']}", f"underflows {snap.sound['underflows']}"))
    parts = [Text.from_markup("\n".join(lines)),
             Panel(roll(snap, width, span_s=span_s), title="heard and played", border_style="grey50")]
    notes = list(snap.events[-3:])
    if extra:
        notes.insert(0, extra)
    if notes:
        parts.append(Text("\n".join(notes), style="yellow"))
    parts.append(Text(KEYS, style="dim"))
    return Group(*parts)
