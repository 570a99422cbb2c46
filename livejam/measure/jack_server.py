"""MIDI round trips over JACK, for the benchmarks: the transport's own floor and echo paths.

A path is a process with an input and an output port; `round_trips` sends a
note into its input and times the first message back from its output. The
bare rtmidi echo process (`BARE_ECHO`) is the transport floor: two JACK hops
and rtmidi, nothing of livejam. A livejam daemon path minus that floor,
measured in the same run, is livejam's own overhead.

JACK: we only use a server that runs (JACK_NO_START_SERVER), or one we start
ourselves, named and synchronous (-S, see DESIGN.md), and stop by PID.
"""
from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass


BARE_ECHO = """
import rtmidi, signal, sys
client = sys.argv[1]
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client + " in"); inp.open_virtual_port("in")
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client + " out"); out.open_virtual_port("out")
send = out.send_message
inp.set_callback(lambda event, data: send(event[0]))
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


def jack_running() -> bool:
    """True when a JACK server (JACK_DEFAULT_SERVER or the default) answers; never starts one."""
    jack_wait = shutil.which("jack_wait")
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    if jack_wait:
        cmd = [jack_wait, "-c"]
        if os.environ.get("JACK_DEFAULT_SERVER"):
            cmd += ["-s", os.environ["JACK_DEFAULT_SERVER"]]
        try:
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return out.returncode == 0 and "not running" not in out.stdout
    try:  # no jack_wait: ask rtmidi (its probe never starts a server, see livejam.midi.ports)
        from livejam.midi.ports import MidiUnavailable, select_backend

        select_backend("jack")
        return True
    except (ImportError, MidiUnavailable):
        return False


@dataclass
class JackServer:
    """A private JACK server we started: dummy driver, synchronous, named; stopped by PID."""

    proc: subprocess.Popen
    name: str
    saved_env: dict

    @classmethod
    def start(cls, period: int = 64, rate: int = 48000, name: str | None = None,
              client_timeout_ms: int | None = None) -> "JackServer":
        """`client_timeout_ms`: how long the server waits for a client's period (jackd -t)."""
        jackd, jack_wait = shutil.which("jackd"), shutil.which("jack_wait")
        if not jackd or not jack_wait:
            raise RuntimeError("jackd/jack_wait not found: install Debian jackd2")
        name = name or f"livejam-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        timeout = ["-t", str(client_timeout_ms)] if client_timeout_ms else []
        proc = subprocess.Popen([jackd, "-n", name, "-S", *timeout, "-d", "dummy", "-r", str(rate), "-p", str(period)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        wait = subprocess.run([jack_wait, "-w", "-s", name, "-t", "20"], env=env, capture_output=True)
        if wait.returncode != 0 or proc.poll() is not None:
            cls._stop_proc(proc)
            raise RuntimeError(f"JACK server {name} did not start")
        saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        # this process and every path it spawns use our server, never a user's own
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        return cls(proc, name, saved)

    @staticmethod
    def _stop_proc(proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._stop_proc(self.proc)


class EchoPath:
    """A spawned echo/reply process; ready once it printed a line containing 'ready'."""

    def __init__(self, cmd: list[str], timeout: float = 60.0):
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, text=True)
        self.lines: list[str] = []  # what it printed after 'ready' (read once it stopped)
        lines: queue.Queue = queue.Queue()

        def pump() -> None:  # keep reading so the child never blocks on a full pipe
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        self._queue = lines
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is not None and "ready" in line:
                return
            if line is None:
                if self.proc.poll() is None:  # hung, or its output closed early
                    self.proc.kill()
                self.proc.wait(5)
                why = self._stderr_tail()
                self.stop()
                raise RuntimeError(f"{' '.join(cmd[:4])} ... did not become ready: {why}")

    def _stderr_tail(self) -> str:
        self._err.seek(0)
        text = self._err.read().decode(errors="replace").strip().splitlines()
        return text[-1] if text else f"exit status {self.proc.poll()}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._pump.join(5)
        while not self._queue.empty():
            line = self._queue.get_nowait()
            if line is not None:
                self.lines.append(line)
        self._err.close()

    def __enter__(self) -> "EchoPath":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def bare_echo(client: str) -> EchoPath:
    """The transport floor: a bare rtmidi echo process with ports '<client> in:in' / '<client> out:out'."""
    return EchoPath([sys.executable, "-c", BARE_ECHO, client])


def livejam_echo(client: str) -> EchoPath:
    """`livejam run --performer echo`: the daemon's plumbing (queue, threads, scheduler, ledger), no model."""
    return EchoPath([sys.executable, "-m", "livejam.cli", "run", "--performer", "echo", "--no-record", "--backend", "jack",
                  "--set", f'midi.client_name="{client}"'])


def port_index(ports: list[str], wanted: str) -> int:
    """Index of the first port whose name contains `wanted`."""
    for i, p in enumerate(ports):
        if wanted in p:
            return i
    raise RuntimeError(f"no JACK MIDI port {wanted!r}; have {ports}")


def _until_answered(out, got: threading.Event, limit_s: float) -> None:
    """Send probe notes until one comes back (a loaded machine may take seconds to wire up a
    new JACK connection and start the process at the other end); a path that never answers
    shows as missing round trips, not as a hang."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        got.clear()
        out.send_message([0x90, 30, 1])
        answered = got.wait(0.5)
        out.send_message([0x80, 30, 0])
        if answered:
            time.sleep(0.2)  # the probe's note-off reply passes before the measured notes
            return


def round_trips(in_port: str, out_port: str, n: int, gap: float = 0.003, timeout: float = 5.0,
                settle_s: float = 30.0) -> list[float]:
    """Send n messages (note-on/off pairs) into `in_port`; seconds until the first message back on `out_port`.

    The arrival is timestamped in rtmidi's callback, and the sender waits on an
    Event (not a Python spin): a spinning waiter would hold the GIL and delay
    the callback by up to the interpreter's switch interval (5 ms).
    """
    import rtmidi

    from livejam.midi.ports import port_names

    arrived: list[float] = []
    got = threading.Event()

    def on_message(event, data, _now=time.perf_counter) -> None:
        arrived.append(_now())
        got.set()

    tag = uuid.uuid4().hex[:6]
    inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"bench-rx-{tag}")
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"bench-tx-{tag}")
    try:
        inp.set_callback(on_message)
        inp.open_port(port_index(port_names(inp), out_port))
        out.open_port(port_index(port_names(out), in_port))
        _until_answered(out, got, settle_s)  # connections made: wait until the path really answers
        rtts = []
        for i in range(n):
            pitch = 40 + (i // 2) % 40
            msg = [0x90, pitch, 100] if i % 2 == 0 else [0x80, pitch, 0]
            got.clear()
            before = len(arrived)
            t0 = time.perf_counter()
            out.send_message(msg)
            if got.wait(timeout) and len(arrived) > before:
                rtts.append(arrived[before] - t0)
            time.sleep(gap)
            del arrived[:]  # a late second reply must not count for the next message
        return rtts
    finally:
        inp.cancel_callback()
        inp.close_port()
        out.close_port()
        inp.delete()
        out.delete()
