"""What a recording's save costs the live path, as a session grows (issue 20: recordings off the live path).

    python -m livejam.measure.recording --notes 200000 --every 2000

Records NOTES machine notes (and as many human ones) through livejam.recording.Recorder at the
daemon's cadence: a flush every EVERY / 5 notes (the daemon's second), a save every EVERY notes (its
5 s, at 8 notes a second per part), the save in the background as a live session does. Prints the
median, p99 and max on the live path of each save (the file's image: encoding what came since the
last flush) and of each flush, and the recording thread's own time writing the file, beside the old
way of the same sizes (re-encoding the whole session with mido at each save, measured up to --old-max
notes) in the same run: a ratio, since absolute times differ between machines.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from livejam.events import TimedNote
from livejam.midi.spec import note_off, note_on
from livejam.recording import Recorder


def _old_save(rec_notes: list, path: Path) -> None:
    from livejam.events import timed_to_notes
    from livejam.midi.files import write_midi

    write_midi(path, [("human", timed_to_notes(sorted(rec_notes[0], key=lambda n: n.time))),
                      ("machine", timed_to_notes(sorted(rec_notes[1], key=lambda n: n.time)))])


def measure(notes: int, every: int, old_max: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rec = Recorder(0.0)
    saves, flushes, old, sizes, skipped = [], [], [], [], 0
    human, machine = [], []  # what the old recorder kept: every note
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.mid"
        t = 1.0
        for i in range(notes):
            pitch = int(rng.integers(40, 90))
            for record, kept, ch in ((rec.record_human, human, 0), (rec.record_machine, machine, 1)):
                record(note_on(ch, pitch, 80), t)
                record(note_off(ch, pitch), t + 0.1)
                if i < old_max:
                    kept += [TimedNote(t, ch, pitch, 80), TimedNote(t + 0.1, ch, pitch, 0)]
            t += 0.125
            if (i + 1) % every == 0:
                t0 = time.perf_counter()
                if not rec.save_in_background(path):
                    skipped += 1
                saves.append((time.perf_counter() - t0) * 1e3)
                rec.wait_saved(60.0)  # the next save comes seconds later in a session: not timed
                sizes.append(path.stat().st_size)
            elif (i + 1) % max(1, every // 5) == 0:
                t0 = time.perf_counter()
                rec.flush()
                flushes.append((time.perf_counter() - t0) * 1e3)
                if i + 1 <= old_max:
                    t0 = time.perf_counter()
                    _old_save((human, machine), Path(tmp) / "old.mid")
                    old.append((time.perf_counter() - t0) * 1e3)

    def stats(ms: list[float]) -> dict:
        a = np.asarray(ms) if ms else np.zeros(1)
        return {"n": len(ms), "median_ms": round(float(np.median(a)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
                "max_ms": round(float(a.max()), 3)}

    writes = list(rec.writer.write_ms) if rec.writer is not None else []
    return {"notes_per_part": notes, "save_every": every, "save": stats(saves), "flush": stats(flushes),
            "background_write": stats(writes), "skipped": skipped, "old_save_up_to": old_max,
            "old": stats(old), "last_old_vs_same_save": round(old[-1] / saves[len(old) - 1], 1) if old else None,
            "file_bytes": sizes[-1] if sizes else 0, "kept_events": len(rec.human) + len(rec.machine)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--notes", type=int, default=200_000, help="notes per part (human and machine)")
    p.add_argument("--every", type=int, default=2000, help="save after this many notes (5 s of a dense session)")
    p.add_argument("--old-max", type=int, default=20_000, help="measure the old whole re-encode up to this size")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.notes < 1 or args.every < 1 or args.old_max < 0:
        p.exit(2, "livejam.measure.recording: --notes and --every must be >= 1, --old-max >= 0\n")
    r = measure(args.notes, args.every, args.old_max)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        s, f, w, o = r["save"], r["flush"], r["background_write"], r["old"]
        print(f"{r['notes_per_part']} notes per part, a save every {r['save_every']}, a flush every "
              f"{max(1, r['save_every'] // 5)}; on the live path: save median {s['median_ms']} ms, p99 {s['p99_ms']} ms, "
              f"max {s['max_ms']} ms; flush median {f['median_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms")
        print(f"the recording thread writing the file: median {w['median_ms']} ms, max {w['max_ms']} ms "
              f"({r['file_bytes']} bytes at the end; {r['kept_events']} events kept in memory; {r['skipped']} skipped)")
        if o["n"]:
            print(f"old whole re-encode up to {r['old_save_up_to']} notes: median {o['median_ms']} ms, max {o['max_ms']} ms; "
                  f"at {r['old_save_up_to']} notes {r['last_old_vs_same_save']}x the new save")
    return 0


if __name__ == "__main__":
    sys.exit(main())
