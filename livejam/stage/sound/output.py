"""The audio output stream and the daemon add-on behind `livejam run --sound`.

Audio callback contract (as sounddevice states its own): it never blocks,
takes no lock a MIDI thread holds, does no I/O and lets no exception escape;
it drains the bounded note queue into the synth, renders one block, and
counts the stream's status flags (underflows). Everything that can fail
(no sounddevice, no PortAudio, no device, no soundfont) fails in `start`, in
one line, and MIDI keeps working.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from livejam import quiet_stderr
from livejam.session import AddOn
from livejam.stage.sound.synth import CONTROL, HUMAN, MACHINE, NOTE_OFF, NOTE_ON, SoundUnavailable, Synth

log = logging.getLogger(__name__)


@dataclass
class SoundCounters:
    blocks: int = 0
    underflows: int = 0  # the device asked before a block was ready (status flags)
    callback_errors: int = 0
    level: float = 0.0  # peak of the last block, 0..1: the status screen's meter
    synth_events: int = 0  # note events applied to the synth (copied at close)
    queue_overflow: int = 0  # note events dropped on a full queue (copied at close)




class SoundOut(AddOn):
    """Daemon add-on: the human's notes (on_human) and the machine's (on_sent) into the synth."""

    taps_human = taps_sent = True  # it plays both parts

    def __init__(self, config, machine_channels: tuple[int, ...] = (0,)):
        self.config = config  # a SoundConfig
        self.machine_channels = machine_channels
        self.counters = SoundCounters()
        self.synth: Synth | None = None
        self.stream = None
        self.line = "sound: off"  # what the CLI prints once the session is ready

    # --- set-up ---------------------------------------------------------------------
    def open(self) -> str:
        """Open synth and stream; returns the one line to print. Never raises: no sound is not an error."""
        try:
            with quiet_stderr():
                import sounddevice as sd
        except (ImportError, OSError) as e:  # OSError: PortAudio (libportaudio2) missing
            self.line = f"sound: off (no audio library: {e}); MIDI keeps working"
            return self.line
        c = self.config
        try:
            device = c.device or None
            with quiet_stderr():
                if device is None and not any(d["max_output_channels"] > 0 for d in sd.query_devices()):
                    self.line = ("sound: off (no audio output device; without a sound card on Linux, a JACK "
                                 "server gives one: jackd -d dummy -r 48000); MIDI keeps working")
                    return self.line
                info = sd.query_devices(device, "output")
                rate = c.samplerate or int(info["default_samplerate"])
                self.synth = Synth(c.soundfont, rate, (c.human_program, c.machine_program), c.gain, c.queue_size)
                self.stream = sd.OutputStream(samplerate=rate, blocksize=c.block_size, channels=2, dtype="int16",
                                              latency=c.latency, device=device, callback=self._callback)
                self.stream.start()
        except (SoundUnavailable, sd.PortAudioError, ValueError) as e:  # ValueError: no such/any device
            self.close()
            self.line = f"sound: off (no audio output: {str(e).splitlines()[0]}); MIDI keeps working"
            return self.line
        block_ms = c.block_size / rate * 1000
        self.line = (f"sound: {self.synth.soundfont.name} on {info['name']} at {rate} Hz; output latency "
                     f"{self.stream.latency * 1000 + block_ms:.1f} ms (block {c.block_size} frames = {block_ms:.1f} ms"
                     f" + device {self.stream.latency * 1000:.1f} ms); programs human={c.human_program} "
                     f"machine={c.machine_program}")
        return self.line

    def start(self, session) -> None:  # the daemon add-on hook
        if self.synth is None and self.stream is None:
            self.open()
        log.info("%s", self.line)

    # --- producers (MIDI threads): never block ------------------------------------------
    def on_human(self, note, now: float) -> None:
        if self.synth is not None:
            self.synth.queue.put(HUMAN, NOTE_ON if note.velocity > 0 else NOTE_OFF, note.pitch, note.velocity)

    def on_sent(self, port: int, msg, t: float) -> None:
        if self.synth is None or port != 0:  # 1: --thru, the human is heard through on_human; 2: clearing
            return
        try:
            channel = MACHINE + self.machine_channels.index(msg.channel)
        except ValueError:
            channel = MACHINE
        if msg.kind == "note_on" and msg.b > 0:
            self.synth.queue.put(channel, NOTE_ON, msg.a, msg.b)
        elif msg.kind in ("note_on", "note_off"):
            self.synth.queue.put(channel, NOTE_OFF, msg.a)
        elif msg.kind == "control_change":
            self.synth.queue.put(channel, CONTROL, msg.a, msg.b)

    # --- consumer: the audio thread ---------------------------------------------------------
    def _callback(self, outdata, frames, time_info, status) -> None:
        try:
            if status.output_underflow:
                self.counters.underflows += 1
            self.synth.render_into(outdata)
            self.counters.blocks += 1
            self.counters.level = float(outdata.max()) / 32768.0
        except Exception:  # never escape into PortAudio: silence this block, count it
            outdata.fill(0)
            self.counters.callback_errors += 1

    def meter(self) -> dict:
        c = self.counters
        return {"level": round(c.level, 3), "blocks": c.blocks, "underflows": c.underflows}

    def summary(self) -> dict:
        c = self.counters
        return {"blocks": c.blocks, "underflows": c.underflows, "callback_errors": c.callback_errors,
                "queue_overflow": c.queue_overflow, "synth_events": c.synth_events}

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.stop()
                self.stream.close()
            except Exception as e:  # a device gone mid-session: nothing left to stop
                log.debug("sound: closing the stream: %s", e)
            self.stream = None
        if self.synth is not None:
            self.counters.synth_events = self.synth.events
            self.counters.queue_overflow = self.synth.queue.overflow
            self.synth.close()
            self.synth = None
