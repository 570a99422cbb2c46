"""A long live duet over JACK, minute by minute: scheduler lateness and memory.

    python -m livejam.measure.duet --minutes 10 --start-jack [--performer neural] [--bpm 100] [--json]

The live daemon (real ports, queue, performer thread, scheduler, ledger, clock
out) plays a duet with a player in a separate process (duet_player.py), which plays a seeded
melody (8th and quarter notes in C major, phrases with rests, a human's
velocities) at the session's tempo and listens to everything livejam sends. Each
minute the daemon's own scheduler lateness (how late each message left, the
figure the scheduler records itself) and the process's resident memory are
read; the bare sleep-then-spin loop, measured in the same process just before
the session, is the machine's floor. At the end: the daemon's exit counters and
the notes the player's side still hears sounding (must be 0).

Figures move with the machine and its load: the table prints the CPU and the
load average beside them; compare within one run.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from livejam.measure.duet_player import CLIENT
from livejam.session import AddOn
from livejam.stats import summary_ms


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of this process, or of process `pid` (Linux /proc), in MB; nan where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class MinuteProbe(AddOn):
    """A daemon add-on: every `period_s` it reads the scheduler's new lateness values and the RSS;
    it logs when each note message sent was meant to sound (None: sent at once, untimed)."""

    taps_sent = True

    def __init__(self, period_s: float, end_s: float):
        self.period_s, self.end_s = period_s, end_s
        self.rows: list[dict] = []
        self.intended: list[tuple[tuple, float | None]] = []  # (note_key, intended time) in sending order
        self._stop = threading.Event()
        self._counters = None
        self._timed = 0
        self.recorder = None

    def start(self, session) -> None:
        self.recorder = session.recorder  # its note count, read at the end
        self._counters = session.scheduler.counters
        self._timed = self._counters.timed
        threading.Thread(target=self._run, args=(session,), name="duet-probe", daemon=True).start()

    def on_sent(self, port: int, msg, t: float) -> None:
        """The scheduler thread, as each message leaves: a timed note's lateness was just recorded."""
        if msg.kind not in ("note_on", "note_off") or self._counters is None:
            return
        from livejam.measure.heard import note_key

        c, meant = self._counters, None
        if c.timed != self._timed:
            self._timed = c.timed
            meant = t - c.lateness[-1]
        on = msg.kind == "note_on" and msg.velocity > 0
        self.intended.append((note_key(0x90 | msg.channel if on else 0x80 | msg.channel, msg.note), meant))

    def _run(self, session) -> None:
        counters = session.scheduler.counters
        seen = counters.timed
        start = time.monotonic()
        self.rows.append({"t_s": 0.0, "rss_mb": round(rss_mb(), 1)})
        k = 0
        while not self._stop.wait(max(0.0, start + (k + 1) * self.period_s - time.monotonic())):
            k += 1
            timed = counters.timed
            new = _newest(counters.lateness, timed - seen)
            seen = timed
            self.rows.append({"t_s": k * self.period_s, "messages": len(new), "lateness_ms": summary_ms(new, 1e3),
                              "late_over_1ms": sum(x > 1e-3 for x in new),
                              "dropped_late": counters.dropped_late, "rss_mb": round(rss_mb(), 1)})
            if k * self.period_s >= self.end_s:
                session.daemon.request_stop("stopped")
                return

    def close(self) -> None:
        self._stop.set()


class Preload(AddOn):
    """A daemon add-on: the recording holds `notes` notes per part (human and machine) before anything
    plays, as after hours of playing, encoded before the session starts (as it would have been, a
    second at a time), so that every save of the session writes a file of that size."""

    def __init__(self, notes: int):
        self.notes = notes

    def start(self, session) -> None:
        from livejam.midi.spec import note_off, note_on

        rec = session.recorder
        t = session.clock.now() - self.notes * 0.125 - 1.0  # 8 notes a second per part, up to a second ago
        for i in range(self.notes):
            pitch = 48 + i % 36
            for record, channel in ((rec.record_human, 0), (rec.record_machine, 1)):
                record(note_on(channel, pitch, 80), t)
                record(note_off(channel, pitch), t + 0.1)
            t += 0.125
        rec.flush()


def _newest(values, n: int) -> list[float]:
    """The last n values of a deque the scheduler thread appends to (a copy can meet an append)."""
    if n <= 0:
        return []
    for _ in range(100):
        try:
            return list(values)[-n:]
        except RuntimeError:  # deque mutated during iteration
            time.sleep(0.001)
    return []


def run(args: argparse.Namespace) -> dict:
    from livejam.config import DaemonConfig, load
    from livejam.daemon import Daemon
    from livejam.measure.latency import floor_loop, machine_info

    floor = summary_ms(floor_loop(2000, 0.005), 1e3)  # 10 s of the bare loop, before the session
    overrides = [f"midi.client_name={json.dumps(CLIENT)}", "midi.backend=\"jack\"", "record.enabled=false",
                 f"performer.kind={json.dumps(args.performer)}",
                 # the Markov continuator plays no duet: it answers the player's phrases
                 f"neural.mode={json.dumps('call' if args.performer == 'markov' else 'duet')}",
                 f"beat.bpm={args.bpm}", "beat.clock_out=true", "screen.mode=\"off\""]
    if args.model:
        overrides.append(f"neural.model={json.dumps(args.model)}")
    if args.stage:
        overrides += ["record.enabled=true", 'osc.listen="127.0.0.1:0"']
    overrides += args.overrides
    config = load(DaemonConfig, None, overrides)
    seconds = args.minutes * 60.0
    probe = MinuteProbe(args.period_s, seconds + 4.0)
    player: dict = {}

    log_file = tempfile.NamedTemporaryFile(prefix="livejam-duet-", suffix=".json", delete=False)
    log_file.close()

    def ready(inp: str, out: str, backend: str) -> None:
        cmd = [sys.executable, "-m", "livejam.measure.duet_player", "--seconds", str(seconds), "--bpm", str(args.bpm),
               "--seed", str(args.seed), "--log", log_file.name]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=_read_player, args=(proc, player), daemon=True).start()

    addons, record_path = [probe], None
    if args.preload_notes:
        addons.append(Preload(args.preload_notes))
    if args.stage:  # as on stage: the status screen drawing, OSC pushing to a subscriber, the recording on
        addons += stage_addons(config)
        record_path = os.path.join(tempfile.gettempdir(), f"livejam-duet-{os.getpid()}.mid")
    result = Daemon(config, on_ready=ready, addons=tuple(addons), record_path=record_path).run()
    recording_bytes = None
    if record_path and os.path.exists(record_path):
        recording_bytes = os.path.getsize(record_path)
        os.unlink(record_path)
    deadline = time.monotonic() + 10.0
    while "report" not in player and time.monotonic() < deadline:
        time.sleep(0.1)
    heard = _heard(log_file.name, probe.intended, args.bpm)
    os.unlink(log_file.name)
    return {"machine": machine_info(), "floor": floor, "minutes": probe.rows, "heard": heard,
            "stage": {"screen_frames": addons[-1].frames, "recording_bytes": recording_bytes,
                      "recording_notes": probe.recorder.notes} if args.stage else None,
            "rc": result.rc,
            "reason": result.reason, "daemon": {k: result.summary[k] for k in ("scheduler", "ledger",
                                                                                "sounding_at_exit", "input")},
            "player": player.get("report"), "hard_exit": result.hard_exit}


class _Terminal:
    """Where the measured status screen draws: a terminal to rich (every frame is rendered and
    written, as on stage), nowhere in fact."""

    def __init__(self):
        self._null = open(os.devnull, "w")

    def write(self, text: str) -> int:
        return self._null.write(text)

    def flush(self) -> None:
        self._null.flush()

    def isatty(self) -> bool:
        return True


def stage_addons(config) -> list:
    """OSC with one subscriber, then the status screen (drawn to a terminal that shows nothing)."""
    from pythonosc.udp_client import SimpleUDPClient

    from livejam.stage.osc import OscControl
    from livejam.stage.ui import StatusAddon

    osc = OscControl(config.osc.listen, config)
    osc.bind()
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))  # the subscriber: its pushes land here, unread

    class Subscribe(StatusAddon):
        def start(self, session) -> None:
            super().start(session)
            SimpleUDPClient("127.0.0.1", osc.port).send_message("/livejam/subscribe", listener.getsockname()[1])

    return [osc, Subscribe(config, "screen", stream=_Terminal())]


def _heard(log_path: str, intended: list, bpm: float) -> dict | None:
    """Lateness and clock jitter as the player's process heard them, and the bare transport's."""
    from livejam.measure import heard as h

    try:
        with open(log_path) as f:
            log = json.load(f)
    except (OSError, ValueError):
        return None  # the player did not finish: its report says so
    arrived = [(tuple(k), t) for k, t in log["notes"]]
    bare = log["bare"]
    return {"notes": h.summary(h.match_notes(intended, arrived)), "notes_sent": len(intended),
            "notes_arrived": len(arrived), "clock_jitter": h.summary(h.grid_jitter(log["clock"], 60.0 / bpm / 24)),
            "bare": {"lateness": h.summary(bare["lateness"]), "jitter": h.summary(bare["jitter"]),
                     "sent": bare["sent"], "arrived": bare["arrived"]}}


def _read_player(proc: subprocess.Popen, player: dict) -> None:
    for line in proc.stdout:
        if line.startswith("player {"):
            player["report"] = json.loads(line.split(" ", 1)[1])
    proc.wait()


def format_table(r: dict) -> str:
    m = r["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_avg_1min']} at the start",
             f"floor (bare sleep-then-spin, 5 ms apart, same process): median {r['floor']['median_ms']:.3f} "
             f"p99 {r['floor']['p99_ms']:.3f} max {r['floor']['max_ms']:.3f} ms",
             "  t (s)  messages  lateness median   p99     max (ms)  >1ms  dropped  RSS MB"]
    for row in r["minutes"]:
        if "lateness_ms" not in row:
            lines.append(f"{row['t_s']:>7.0f}  {'':>8}  {'':>35}  {row['rss_mb']:>6.1f}")
            continue
        lat = row["lateness_ms"]
        if lat.get("n", 0) == 0:
            lat = {"median_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
        lines.append(f"{row['t_s']:>7.0f}  {row['messages']:>8}  {lat['median_ms']:>15.3f} {lat['p99_ms']:>7.3f} "
                     f"{lat['max_ms']:>7.3f}  {row['late_over_1ms']:>10}  {row['dropped_late']:>7}  "
                     f"{row['rss_mb']:>6.1f}")
    d, p = r["daemon"], r["player"] or {}
    lines.append(f"whole session: lateness {_fmt(d['scheduler']['lateness'])}; sent {d['scheduler']['sent']}, "
                 f"dropped late {d['scheduler']['dropped_late']}; heard {d['input']['received']} messages")
    if r.get("stage"):
        lines.append(f"stage on: the status screen drew {r['stage']['screen_frames']} frames, OSC pushed to a "
                     f"subscriber, the session was recorded")
    heard = r.get("heard")
    if heard:
        b = heard["bare"]
        lines += [f"heard by the player's process (arrival - intended; {heard['notes_arrived']} of "
                  f"{heard['notes_sent']} note messages arrived):",
                  f"  livejam's notes         {_fmt(heard['notes'])}",
                  f"  the bare transport      {_fmt(b['lateness'])} ({b['arrived']} of {b['sent']} arrived)",
                  f"  MIDI clock tick jitter  {_fmt(heard['clock_jitter'])}",
                  f"  bare transport jitter   {_fmt(b['jitter'])}"]
    lines.append(f"end: rc {r['rc']} ({r['reason']}), sounding in the ledger {d['sounding_at_exit']}, "
                 f"player sent {p.get('sent')} and heard {p.get('on')} note-ons / {p.get('off')} note-offs / "
                 f"{p.get('clock')} clocks, still sounding on the player's side {p.get('sounding')}")
    return "\n".join(lines)


def _fmt(s: dict) -> str:
    if not s.get("n"):
        return "none"
    return f"median {s['median_ms']:.3f} p99 {s['p99_ms']:.3f} max {s['max_ms']:.3f} ms (n={s['n']})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--period-s", type=float, default=60.0, help="one table row per this many seconds")
    ap.add_argument("--performer", default="neural", choices=("neural", "markov", "echo"))
    ap.add_argument("--model", help="model file (default: the shipped model)")
    ap.add_argument("--bpm", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a daemon setting, e.g. scheduler.realtime_priority=0 (repeatable)")
    ap.add_argument("--start-jack", action="store_true", help="start a private JACK server (dummy driver)")
    ap.add_argument("--stage", action="store_true",
                    help="the status screen drawing, OSC pushing to a subscriber and the recording on (needs "
                         "livejam[ui,osc])")
    ap.add_argument("--preload-notes", type=int, default=0, metavar="N",
                    help="with --stage: the recording holds N notes per part before the session starts (as "
                         "after a long session), so each save writes a file of that size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.preload_notes and (args.preload_notes < 0 or not args.stage):
        ap.exit(2, "livejam.measure.duet: --preload-notes needs --stage (the recording) and N >= 0\n")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    server = None
    if args.start_jack:
        from livejam.measure.jack_server import JackServer

        server = JackServer.start(period=64)
    try:
        r = run(args)
        print(json.dumps(r, indent=1) if args.json else format_table(r), flush=True)
    finally:
        if server is not None:
            server.stop()
    ok = r["rc"] == 0 and r["daemon"]["sounding_at_exit"] == 0 and (r["player"] or {}).get("sounding") == 0
    if r["hard_exit"]:  # as `livejam run` ends: libjack's threads still hold callbacks into Python
        from livejam.daemon import leave_process

        leave_process(0 if ok else 1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
