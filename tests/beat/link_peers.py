"""Two Ableton Link peers on one machine: a stand-in DAW in its own process and livejam's
LinkSource + BeatClock in this one. Run inside a network namespace with only the loopback
device (tests/beat/test_link.py does that), so Link's multicast never leaves the machine.

The DAW (`--daw`) reads commands on stdin ("tempo BPM", "beat", "quit") and answers on
stdout. The livejam side drives it, waits for what Link reports (polling with a deadline:
peers and tempo travel over the network) and prints what it saw as JSON; the test asserts.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

DEADLINE_S = 15.0


def daw() -> None:
    import link

    session = link.Link(97.0)
    session.enabled = True
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "tempo":
            state = session.captureAppSessionState()
            state.setTempo(float(cmd[1]), session.clock().micros())
            session.commitAppSessionState(state)
            print("ok", flush=True)
        elif cmd[0] == "beat":  # Link's beat at a Link time, quantum 4
            micros = session.clock().micros()
            print(micros, session.captureAppSessionState().beatAtTime(micros, 4), session.numPeers(), flush=True)
        elif cmd[0] == "quit":
            session.enabled = False  # says goodbye: the peers see it leave at once
            print("bye", flush=True)
            return


def main() -> None:
    from livejam.beat.live import BeatClock
    from livejam.clock import RealClock
    from livejam.config import BeatConfig
    from livejam.beat.link import LinkSource

    clock = RealClock()
    source = LinkSource(bpm=120.0, quantum=4, clock=clock.now)
    beats = BeatClock(BeatConfig(bpm=120.0, link=True), t0=clock.now(), link=source)
    out: dict = {"alone": beats.source}
    peer = subprocess.Popen([sys.executable, __file__, "--daw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)

    def ask(cmd: str) -> list[str]:
        peer.stdin.write(cmd + "\n")
        peer.stdin.flush()
        return peer.stdout.readline().split()

    def wait_for(cond) -> float:
        start = time.monotonic()
        while time.monotonic() - start < DEADLINE_S:
            beats.expire(clock.now())
            if cond():
                return round(time.monotonic() - start, 3)
            time.sleep(0.02)
        return -1.0

    try:
        assert peer.stdout.readline().strip() == "ready"
        out["join_s"] = wait_for(lambda: beats.source == "link")
        ask("tempo 97")  # the DAW sets the session's tempo; livejam follows
        out["tempo_s"] = wait_for(lambda: abs((beats.bpm_at(clock.now()) or 0) - 97.0) < 0.01)
        out["bpm"] = beats.bpm_at(clock.now())
        out["generation"] = beats.generation
        errors = []
        for _ in range(5):  # the DAW's beat at a Link time against ours at the same moment
            beats.expire(clock.now())
            micros, daw_beat, _ = ask("beat")
            offset = source.session.clock().micros() - clock.now() * 1e6
            ours = beats.beat_at((float(micros) - offset) / 1e6)
            errors.append(ours - float(daw_beat))
            time.sleep(0.1)
        out["beat_errors"] = errors
        out["bar"] = beats.bar_at(beats.beat_at(clock.now()))
        ask("tempo 130")
        out["retempo_s"] = wait_for(lambda: abs((beats.bpm_at(clock.now()) or 0) - 130.0) < 0.01)
        out["generation_after_retempo"] = beats.generation
        ask("quit")
        out["leave_s"] = wait_for(lambda: beats.source == "bpm")
        out["after"] = [beats.source, beats.bpm_at(clock.now())]
    finally:
        peer.stdin.close()
        peer.wait(10)
        source.close()
    print(json.dumps(out))


if __name__ == "__main__":
    daw() if "--daw" in sys.argv else main()
