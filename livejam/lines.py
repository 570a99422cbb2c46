"""The lines of `livejam run` a person reads: at start, what to connect where; at exit, one line that
sums the session up (the whole counters, `DaemonResult.summary`, go behind --json and into the log)."""
from __future__ import annotations


def connect_lines(config, inp: str, out: str) -> list[str]:
    """What to connect, for the virtual ports livejam opened (a port named with --in/--out is
    connected by livejam itself and needs no advice)."""
    lines = []
    if not config.midi.input:
        lines.append(f"play: connect your keyboard (or a DAW's MIDI out) to '{inp}'; `livejam ports` lists them")
    if not config.midi.output:
        channel = config.midi.machine_channels[0] + 1
        hear = (f"hear: the built-in synth plays it; a synth or DAW track on '{out}' (channel {channel}) too"
                if config.sound.enabled else
                f"hear: connect a synth or a DAW track to '{out}' (it plays on MIDI channel {channel}), or add --sound")
        lines.append(hear)
    return lines


def exit_line(summary: dict, recording=None) -> str:
    """e.g. `stopped (SIGINT) after 3 min 12 s: heard 412 notes, sent 388; nothing left sounding; recorded to X`.
    Only what went wrong is named beside that (late notes dropped, input lost or refused, notes the
    watchdog ended), each with what it means."""
    reason = summary.get("reason", "stopped")
    head = f"stopped ({reason})"
    if summary.get("seconds") is not None:
        head += f" after {_duration(summary['seconds'])}"
    inp = summary.get("input", {})
    heard = inp.get("by_kind", {}).get("note_on", 0)
    sent = summary.get("ledger", {}).get("note_ons", 0)
    parts = [f"{head}: heard {heard} note{'s' * (heard != 1)}, sent {sent}"]
    sched = summary.get("scheduler", {})
    trouble = [(sched.get("dropped_late", 0), "dropped too late to play"),
               (sched.get("watchdog_offs", 0), "held too long, ended by the watchdog"),
               (inp.get("queue_overflow", 0), "input messages lost (queue full)"),
               (inp.get("invalid", 0), "malformed input messages ignored")]
    xruns = inp.get("xruns")
    if isinstance(xruns, int):  # "unknown" off JACK
        trouble.append((xruns, "JACK xruns (input may have been lost)"))
    parts += [f"{n} {what}" for n, what in trouble if n]
    sounding = summary.get("sounding_at_exit", 0)
    parts.append("nothing left sounding" if sounding == 0 else f"{sounding} notes still sounding")
    if recording:
        parts.append(f"recorded to {recording}")
    return "; ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
