"""OSC remote control (`livejam run --osc [HOST:]PORT`, python-osc): every live control as an
address under /livejam/, and the session's status sent back to whoever asks.

    /livejam/temperature 0.8      /livejam/density -1        /livejam/range 48 72 (or a centre: 60)
    /livejam/mode duet            /livejam/reset             /livejam/panic
    /livejam/end_phrase           /livejam/harmony X (0..1)  /livejam/grid X (0..1)
    /livejam/chords "Am F C G"    a new chord chart (text or a file; "" clears it; a bad one: /livejam/error)
    /livejam/status [PORT]        -> /livejam/status/<name> value ... to the sender (or PORT on its host)
    /livejam/subscribe [PORT]     the same status, pushed `osc.push_hz` times a second; /livejam/unsubscribe

Controls take the same path as a MIDI knob: the server thread turns them into
the control change the performer understands (livejam.stage.steer) and enqueues it
on the input queue; the performer thread, which owns the performer, applies
it. The server binds 127.0.0.1 unless another host is given; nothing listens
without --osc. Errors go back to the sender as /livejam/error "text".
"""
from __future__ import annotations

import logging
import sys
import threading

from livejam.config import ConfigError
from livejam.session import AddOn
from livejam.stage.steer import Steer, SteerError

log = logging.getLogger(__name__)

PREFIX = "/livejam/"
MAX_SUBSCRIBERS = 16  # each costs a status send per push: a bound, not a queue


def parse_listen(text: str) -> tuple[str, int]:
    """"PORT" or "HOST:PORT" -> (host, port); a bare port is localhost only."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--osc {text!r}: expected [HOST:]PORT, e.g. 127.0.0.1:9000")
    return host or "127.0.0.1", int(port)


class OscControl(AddOn):
    """Daemon add-on: a python-osc UDP server on its own thread."""

    def __init__(self, listen: str, config):
        self.host, self.port = parse_listen(listen)
        self.config = config
        self.server = None
        self.steer: Steer | None = None
        self.reader = None
        self.received = 0
        self.errors = 0
        self._thread: threading.Thread | None = None
        self._last_client = None
        self.subscribers: set[tuple[str, int]] = set()  # written by the server thread, read by the push thread
        self._stop = threading.Event()
        self._push_thread: threading.Thread | None = None
        self.pushes = 0
        self.line = ""

    def bind(self) -> str:
        """Open the socket before the session starts (a taken port is a usage error, one line)."""
        try:
            from pythonosc.dispatcher import Dispatcher
            from pythonosc.osc_server import BlockingOSCUDPServer
        except ImportError:
            raise ConfigError("--osc needs python-osc: pip install 'livejam[osc]'") from None
        try:  # not strict: a bundle dated years ahead must not put the server thread to sleep
            dispatcher = Dispatcher(strict_timing=False)
        except TypeError:
            raise ConfigError("--osc needs python-osc >= 1.10.2: pip install -U 'livejam[osc]'") from None
        dispatcher.map(PREFIX + "*", self._handle, needs_reply_address=True)
        control = self

        class Server(BlockingOSCUDPServer):
            def handle_error(self, request, client_address):  # a datagram python-osc cannot parse: one line
                control.errors += 1
                e = sys.exc_info()[1]
                log.warning("osc: datagram from %s:%d dropped: %s: %s", *client_address[:2], type(e).__name__, e)

        try:
            self.server = Server((self.host, self.port), dispatcher)
        except OSError as e:
            raise ConfigError(f"--osc: cannot listen on {self.host}:{self.port}: {e.strerror or e}") from None
        self.port = self.server.server_address[1]  # port 0: the one the system chose
        self.line = f"osc: listening on {self.host}:{self.port} (/livejam/...)"
        return self.line

    def start(self, session) -> None:
        from livejam.stage.ui.status import StatusReader

        if self.server is None:
            self.bind()
        self.reader = StatusReader(session)
        self.steer = Steer(self.config, lambda raw: session.inq.put(session.clock.now(), raw))
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="livejam-osc", daemon=True)
        self._thread.start()
        if self.config.osc.push_hz > 0:
            self._push_thread = threading.Thread(target=self._push_loop, args=(StatusReader(session),),
                                                 name="livejam-osc-push", daemon=True)
            self._push_thread.start()
        log.info("%s", self.line)

    def _handle(self, client: tuple[str, int], address: str, *args) -> None:
        """The server thread: parse, enqueue, reply. Never touches the performer."""
        self.received += 1
        name = address[len(PREFIX):].strip("/")
        if self.steer is None:  # bound, session not started yet
            return
        try:
            if name == "status":
                self._send_status(self._client(self._target(client, args)), self.reader)
            elif name == "subscribe":
                target = self._target(client, args)
                if target not in self.subscribers and len(self.subscribers) >= MAX_SUBSCRIBERS:
                    raise SteerError(f"subscribe: {MAX_SUBSCRIBERS} subscribers already; unsubscribe one first")
                self.subscribers = self.subscribers | {target}  # a new set: no shared mutation
                self._reply(client, "/livejam/subscribed", self._target(client, args)[1])
            elif name == "unsubscribe":
                self.subscribers = self.subscribers - {self._target(client, args)}
            else:
                self.steer.set(name, *args)
        except SteerError as e:
            self.errors += 1
            self._reply(client, "/livejam/error", str(e))
        except Exception as e:  # a bug must not kill the server thread: say it, to both ends
            self.errors += 1
            log.warning("osc: %s %r failed: %s: %s", address, args, type(e).__name__, e)
            self._reply(client, "/livejam/error", f"{address}: {type(e).__name__}: {e}")

    @staticmethod
    def _target(client: tuple[str, int], args) -> tuple[str, int]:
        """Where replies go: the sender's address, or the port it names on its host (1..65535)."""
        if not args:
            return client
        try:
            port = int(args[0])
        except (TypeError, ValueError, OverflowError):
            port = 0
        if not 1 <= port <= 65535:  # 99999 would kill the push thread at its first send
            raise SteerError(f"expected a port 1..65535, got {args[0]!r}")
        return client[0], port

    def _push_loop(self, reader) -> None:
        """The push thread: status to every subscriber, `push_hz` times a second (its own reader and sockets)."""
        from pythonosc.udp_client import SimpleUDPClient

        clients: dict[tuple[str, int], SimpleUDPClient] = {}
        while not self._stop.wait(1.0 / self.config.osc.push_hz):
            subscribers = self.subscribers
            if not subscribers:
                continue
            snap = reader.read()
            for target in subscribers:
                try:
                    self._send_status(clients.setdefault(target, SimpleUDPClient(*target)), snapshot=snap)
                except (OSError, OverflowError) as e:  # only the server thread changes the set: say it, keep the others
                    log.debug("osc: status to %s:%d failed: %s", *target, e)
            self.pushes += 1

    def _send_status(self, client, reader=None, snapshot=None) -> None:
        snap = snapshot or reader.read()
        values = {"mode": snap.mode, "time": round(snap.t, 3), "bpm": snap.bpm or 0.0,
                  "lateness_p99_ms": snap.lateness_ms["p99"] or 0.0, "step_p99_ms": snap.step_ms["p99"] or 0.0,
                  "chord": snap.chord, "chord_source": snap.chord_source}
        for k, v in snap.controls.items():
            values[k] = list(v) if isinstance(v, tuple) else v
        values.update(snap.counters)
        for k, v in values.items():
            client.send_message(f"/livejam/status/{k}", v)

    def _reply(self, target: tuple[str, int], address: str, value) -> None:
        self._client(target).send_message(address, value)

    def _client(self, target: tuple[str, int]):
        """A UDP client for `target`, kept for the next reply (one socket per client, not per message)."""
        from pythonosc.udp_client import SimpleUDPClient

        if self._last_client is None or self._last_client[0] != target:
            self._last_client = (target, SimpleUDPClient(*target))
        return self._last_client[1]

    def close(self) -> None:
        self._stop.set()
        if self._push_thread is not None:
            self._push_thread.join(2.0)
            self._push_thread = None
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
