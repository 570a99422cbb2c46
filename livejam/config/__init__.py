"""Every setting of livejam as a frozen dataclass, one per component (loading: config/loading.py).

Config is the ground floor of the package: it imports nothing else of livejam, and
every other module may import it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

# the loader, re-exported: `from livejam.config import load, DaemonConfig` is the usual import
from livejam.config.controls import ControlMap  # noqa: F401  (the live controls' table makes it)
from livejam.config.loading import ConfigError, from_dict, load, merge, parse_override, to_dict  # noqa: F401
from livejam.config.ranges import TEMPERATURE_MAX, check_ranges  # noqa: F401


# The shipped model, package data (a `pip install` has it too), in two files: the float export,
# and its copy with 8-bit MatMul weights (tools/quantize.py), whose step the CPU runs in about 60%
# of the time at the same musicianship (livejam/models/livejam-small.md). The CPU gets the 8-bit
# file; an onnxruntime with CUDA gets the float one (the 8-bit file is untested there).
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "livejam-small.onnx"
DEFAULT_MODEL_INT8 = DEFAULT_MODEL.with_suffix(".int8.onnx")
MODES = ("call", "duet")


def user_config_file() -> Path:
    """The config `livejam run` loads when no --config is given (if it exists), and `livejam learn`
    writes to: ~/.config/livejam/config.toml on Linux (XDG_CONFIG_HOME respected), the platform's
    own place elsewhere (platformdirs)."""
    return _user_dir("user_config_dir", "~/.config") / "config.toml"


def user_sessions_dir() -> Path:
    """Where sessions are recorded by default: ~/.local/share/livejam/sessions on Linux."""
    return _user_dir("user_data_dir", "~/.local/share") / "sessions"


def _user_dir(kind: str, fallback: str) -> Path:
    try:
        import platformdirs
    except ImportError:  # a base dependency; an install without it still finds the Linux places
        return Path(fallback).expanduser() / "livejam"
    return Path(getattr(platformdirs, kind)("livejam", appauthor=False))


def model_path(configured: str) -> Path:
    """The model file a setting names ("" = the shipped default for this install: default_model())."""
    return Path(configured).expanduser() if configured else default_model()


def default_model() -> Path:
    """The shipped model's file for this install: the float one where onnxruntime has the CUDA
    provider, else the 8-bit one (the float one where the 8-bit file is missing)."""
    try:
        import onnxruntime as ort
        cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:  # the engine says so when it loads; the name is all that is wanted here
        cuda = False
    return DEFAULT_MODEL if cuda or not DEFAULT_MODEL_INT8.is_file() else DEFAULT_MODEL_INT8


@dataclass(frozen=True)
class PerformerConfig:
    """Settings shared by every performer."""

    kind: Literal["neural", "markov", "echo"] = "neural"  # which performer plays (`--performer`)
    # A phrase ends after this much silence with all keys up ...
    phrase_end_silence_s: float = 0.5
    # ... or at once when this controller is pressed (value >= 64). CC 80 is
    # "General Purpose 5", an on/off button nothing else uses; CC 64 (sustain)
    # would cut every pedalled phrase. -1 turns the CC off.
    phrase_end_cc: int = 80
    # The answer lasts phrase duration * ratio, clamped to [min, max] seconds.
    answer_length_ratio: float = 1.0
    min_answer_s: float = 1.0
    max_answer_s: float = 16.0
    # How far ahead of its play time a note is handed to the scheduler (>= p99 step + p99
    # scheduler lateness, see DESIGN.md). On a loaded 2-core VM a live duet's lateness p99
    # was ~30 ms at 0.015, 18 ms at 0.03 and 4.5 ms at 0.05 (no drops), same conditions
    # (`python -m livejam.measure.duet --minutes 2 --set performer.lookahead_s=X`): the
    # performer thread, not the scheduler, was late. 50 ms ahead is still inside a beat's 16th.
    lookahead_s: float = 0.05
    # A machine note is ended after this long even if the model holds it ...
    max_note_s: float = 4.0
    # ... and after this many beats (free time: of 120 bpm): a pianist's note belongs to its beat and
    # chord; the v0.2 pad of 2-5 s notes held through the changes is where the melody clashed
    max_note_beats: float = 2.0
    # sounding machine notes at most (a pianist keeps 2-4 voices; 6 piled up into a pad; at 3 the
    # duet sounded 2.0 voices on the tuning songs, at the bottom of a pianist's range: docs/tuning.md)
    max_polyphony: int = 4
    pitch_low: int = 21
    pitch_high: int = 108
    # Longest context (in events) the Markov continuator conditions on.
    markov_order: int = 4
    # Cap on events in one answer: a model stuck on dt = 0 cannot spin forever.
    max_answer_events: int = 2000
    # Wake-up interval when nothing is pending (keeps the engine loop alive).
    idle_wakeup_s: float = 0.25
    # Keys "held" this long with no other input are taken as lost note-offs,
    # so a dropped message cannot stop phrases from ever ending; and a note passed
    # through (--thru) sounding this long is ended (a flood lost its note-off upstream):
    # the same judgement of how long a human holds a key, so one setting.
    held_key_timeout_s: float = 10.0


@dataclass(frozen=True)
class NeuralConfig:
    """Settings of the neural performer (sampling constraints, mode, controls)."""

    model: str = ""  # model file; "" = the shipped default
    mode: Literal["call", "duet"] = "call"
    temperature: float = 0.7  # part, pitch, velocity
    dt_temperature: float = 1.0  # timing (see Constraints.dt_temperature)
    chord_temperature: float = 0.7  # the chord the machine plays in (see Constraints.chord_temperature)
    top_p: float = 0.9
    min_p: float = 0.0
    key: str = "auto"  # "" = no key lock, "auto" = estimated from the human, or e.g. "C:minor"
    # chosen on held-out POP909 tuning songs (tools/quality.py, docs/tuning.md): with the v0.3 texture
    # (4 voices, notes within 2 beats, ends at chord changes) -0.5 played 1.38x the piano's notes/s, -1 0.79x
    density: float = -1.0
    # 0 = off .. 1 = strong: machine note-ons lean toward the tones of the chord the model
    # predicts for that moment (on top of `key`)
    harmony: float = 0.75  # chosen with max_polyphony on held-out tuning songs (docs/tuning.md)
    # 0 = off .. 1 = strong: with a beat clock, machine onsets lean toward the 16th-note grid
    # (8th-note triplets at half strength); no effect in free time. 1: duet onsets on the grid
    # ~0.43 -> ~0.85 of the time, as often as the songs' own piano parts (docs/tuning.md)
    grid: float = 1.0
    min_note_ms: float = 30.0
    pitch_span: int = 18  # half-width of the pitch range when the pitch-centre control moves it
    duet_idle_stop_s: float = 8.0
    # Duet: the model predicts whose event comes next, and the machine plays only its own
    # turns (False: every sample is the machine's, which crowds the human's gaps).
    duet_turn_taking: bool = True
    # ... but a context of the human alone reads as a solo piece, where the other part never
    # comes: with nothing of its own for this long, the machine takes the next turn itself.
    duet_restart_s: float = 1.5
    # Duet over the human's chords: when the human holds this many notes at once (within the last
    # 4 s), the machine plays a single line over them, as a melody would (0 = off). 4 on the tuning
    # songs (docs/tuning.md): a line at 0.89x the melody's notes/s over the real piano part (5: 1.17x)
    line_over_chords: int = 4
    prompt: str = ""  # a MIDI file that primes the context
    intra_op_threads: int = 1
    max_events_per_poll: int = 64  # a model stuck on dt = 0 cannot hold the performer thread
    # Tempo sync: while MIDI clock runs on the input, machine note-ons land on this grid
    # (in beats: 0.5 = eighth notes, 0.25 = sixteenths); 0 = free time.
    grid_beats: float = 0.0
    controls: ControlMap = field(default_factory=ControlMap)




@dataclass(frozen=True)
class MidiConfig:
    backend: str = "auto"  # auto | default | alsa | jack | coremidi | winmm
    input: str = ""  # substring of an input port to connect to; "" = virtual port "livejam in"
    output: str = ""  # substring of an output port; "" = virtual port "livejam out"
    # A named port (input, output) missing at start is waited for, and one that vanishes is
    # reconnected when it comes back, while the session plays on; True: a missing port is an
    # error at start and a vanished one ends the session (--exit-on-port-loss).
    exit_on_port_loss: bool = False
    client_name: str = "livejam"
    ignore_sysex: bool = True
    ignore_active_sensing: bool = True
    # An input identical to something we sent within this window is our own echo.
    echo_window_s: float = 0.1
    queue_size: int = 4096  # MIDI callback -> performer thread; overflow is counted
    # Output channel per machine part (part 0 continues the human, part 1 its own part), 0-based.
    # Empty: chosen by machine_channels (channel 1, where a synth or DAW track listens by default).
    channels: tuple[int, ...] = ()
    # --thru: the human's notes go to the output too, on this channel (0-based: MIDI channel 1).
    thru: bool = False
    thru_channel: int = 0

    @property
    def machine_channels(self) -> tuple[int, ...]:
        """The channels the machine plays on: `channels` where set; else MIDI channel 1 (every part),
        or with --thru the two channels after the human's (the human keeps channel 1 by default)."""
        if self.channels:
            return self.channels
        if self.thru:
            return tuple(c for c in range(16) if c != self.thru_channel)[:2]
        return (0,)

    @property
    def any_session_channels(self) -> tuple[int, ...]:
        """Every channel a session of these settings may have played on, with --thru or without (the
        machine moves with it) and the thru channel: what the start-up panic clears, since a killed
        session may have run with other options."""
        both = {*replace(self, thru=False).machine_channels, *replace(self, thru=True).machine_channels}
        return tuple(sorted(both | {self.thru_channel}))


@dataclass(frozen=True)
class SchedulerConfig:
    late_drop_s: float = 0.030  # a note-on later than this is dropped with its note-off
    spin_s: float = 0.001  # sleep until this long before an event, then spin
    watchdog_s: float = 8.0  # a machine note held longer is ended
    # Python's GIL switch interval while the daemon runs. The default 5 ms let a
    # CPU-busy thread hold the scheduler ~5 ms late at p99; 0.5 ms measured ~0.8 ms
    # (`livejam bench --sections lateness` measures it under the model's inference).
    gil_switch_interval_s: float = 0.0005
    # SCHED_FIFO priority of the scheduler thread where the system allows it (1-99, JACK's own
    # threads default to 10+); not allowed: one line, normal priority. Off (0) by default: in
    # one process the thread still waits for the GIL, and a 2-minute duet on a loaded 2-core VM
    # was not better with it (`python -m livejam.measure.duet --set scheduler.realtime_priority=5`).
    realtime_priority: int = 0
    # On JACK the scheduler, the note ledger and the MIDI output (clock out included) run in a process
    # of their own (livejam/output/), fed ahead of time: the screen, OSC, the recording and the
    # performer's Python no longer hold the GIL the scheduler waits for. False: in the main process,
    # as on other transports (docs/latency.md, "The output process", has both measured).
    output_process: bool = True
    # The output process writes each message at the JACK frame of its time, in a client of its own
    # (livejam/midi/jack_frames.py, needs JACK-Client), handed over a period ahead; rtmidi writes
    # at the start of the next period instead, up to a period late (64 frames: p99 2.6 ms; 1024:
    # 21 ms; `python -m livejam.measure.frames`). False, or JACK-Client missing: rtmidi's port.
    jack_frames: bool = True
    # The output process's niceness (-20..19; negative runs it ahead of other work: its JACK thread and
    # its scheduler then get a core before busy programs do). Asked for before its port opens; where
    # the system refuses (a user without a nice limit), it runs at normal priority and the counters
    # say so (scheduler.nice). 0: do not ask.
    output_nice: int = -10
    # The performer thread's niceness (the model's steps): it decides each note `lookahead_s` ahead,
    # and a performer starved by busy programs hands its notes over after their time, however
    # promptly the output process sends them (two busy loops beside: notes as heard p99 9.4 ms at 0,
    # 2.7 ms at -5; docs/latency.md). Asked for when the thread starts; refused: a log line, and 0.
    performer_nice: int = -5


@dataclass(frozen=True)
class RecordConfig:
    enabled: bool = True
    folder: str = ""  # "" = the user data dir's sessions/ (~/.local/share/livejam/sessions on Linux)


# --- stage: sound, OSC, status screen (optional add-ons, off the real-time path) ---------

@dataclass(frozen=True)
class SoundConfig:
    enabled: bool = False  # --sound
    soundfont: str = ""  # "" = the first General MIDI soundfont found (Debian timgm6mb-soundfont)
    human_program: int = 0  # General MIDI program, 0-based: 0 acoustic grand piano
    machine_program: int = 4  # 4 electric piano 1
    block_size: int = 256  # frames per audio callback (smaller: lower latency, more CPU wake-ups)
    samplerate: int = 0  # 0 = the device's own rate (JACK plays only at its server's rate)
    latency: float | str = "low"  # sounddevice's: "low", "high" or seconds
    gain: float = 0.5
    queue_size: int = 1024  # notes waiting for the audio callback; overflow is counted
    device: str = ""  # output device name substring; "" = the default


@dataclass(frozen=True)
class OscConfig:
    # host:port to listen on for /livejam/... controls; "" = nothing listens. A bare port
    # binds 127.0.0.1: another address (0.0.0.0) must be asked for.
    listen: str = ""
    push_hz: float = 2.0  # status pushed to /livejam/subscribe'd clients this often (0: no push thread)


@dataclass(frozen=True)
class ScreenConfig:
    mode: str = "auto"  # auto (screen on a terminal, else plain) | screen | plain | off
    refresh_hz: float = 10.0  # a full frame costs ~6 ms of CPU here (livejam bench --screen)
    roll_seconds: float = 8.0  # how much of the past the scrolling roll shows


@dataclass(frozen=True)
class ChordConfig:
    """Where the chord the machine plays in comes from, in one precedence: a chart (given) >
    the chords the human plays (heard) > the machine's own prediction of the coming slot."""

    # `--chords`: "Am F C G" (one chord a bar, looped; "Am:2 F:2" gives beats), or a file of the
    # same text (README, "Chord charts"); POP909's chord_midi.txt lines (start end label) also read
    chart: str = ""
    heard: bool = True  # read the chords the human plays (a left hand, a pad) from the sounding notes
    heard_min_pcs: int = 3  # ... once this many pitch classes sound together
    heard_confidence: float = 0.6  # ... and the best chord covers this share of what sounds
    # A predicted chord is committed for a slot of this many beats (no flicker inside it), re-predicted
    # while the slot is still ahead. Half a beat: a chord heard in the melody on the beat is taken up
    # by the off-beat (on 8 held-out tuning songs the chord it played in had the annotated root 0.27 of
    # the time with 1-beat slots, 0.36 with half beats, 0.32 with quarters: docs/tuning.md) ...
    slot_beats: float = 0.5
    # ... and at a cold start nothing is committed before this many beats were heard: until then
    # the machine keeps to safe tones (the key's tonic triad, or rests without a key)
    listen_beats: float = 2.0
    memory: bool = True  # recall this song's progression where what is heard now matches an earlier bar


@dataclass(frozen=True)
class BeatConfig:
    """Beat clock settings. bpm None: no tempo of our own (free time unless a clock comes in)."""

    bpm: float | None = None
    meter: int = 4  # beats per bar (MIDI clock carries no meter; it applies to every source)
    count_in_bars: int = 0
    click_channel: int = 9  # GM drums (channel 10)
    click_notes: tuple[int, int] = (76, 77)  # (downbeat, other beats): GM hi/low wood block
    click_velocities: tuple[int, int] = (110, 75)
    clock_in: bool = True  # follow incoming MIDI clock (it outranks bpm)
    clock_out: bool = False  # send MIDI clock as master (needs bpm); incoming clock is then
    # ignored: it would be our own looped back, or a second master fighting us
    clock_in_window: int = 96  # ticks in the tempo fit: 4 beats; a tempo jump restarts it sooner
    follow: bool = False  # follow the human's tempo from their note-ons (below bpm and Link)
    follow_confidence: float = 0.3  # the tracker's confidence (0..1) the beat clock needs to follow
    follow_prior_bpm: float = 72.0  # the tempo the follower expects: it decides between x2 and x1/2
    # (72: POP909's median; a melody of eighths fits twice the tempo as well as the true one)
    link: bool = False  # join an Ableton Link session (outranks bpm and follow; MIDI clock outranks it)

    def __post_init__(self) -> None:
        if self.bpm is not None and not 20.0 <= self.bpm <= 300.0:
            raise ValueError(f"beat.bpm must be within 20..300, got {self.bpm}")
        if not 1 <= self.meter <= 16:
            raise ValueError(f"beat.meter must be within 1..16 beats per bar, got {self.meter}")
        if not 0 <= self.count_in_bars <= 8:
            raise ValueError(f"beat.count_in_bars must be within 0..8, got {self.count_in_bars}")
        if not 0 <= self.click_channel <= 15:
            raise ValueError(f"beat.click_channel must be within 0..15 (10 = index 9), got {self.click_channel}")
        if any(not 0 <= n <= 127 for n in self.click_notes):
            raise ValueError(f"beat.click_notes must be MIDI notes 0..127, got {self.click_notes}")
        if any(not 1 <= v <= 127 for v in self.click_velocities):
            raise ValueError(f"beat.click_velocities must be within 1..127, got {self.click_velocities}")
        if not 8 <= self.clock_in_window <= 960:
            raise ValueError(f"beat.clock_in_window must be within 8..960 ticks, got {self.clock_in_window}")
        if not 30.0 <= self.follow_prior_bpm <= 240.0:
            raise ValueError(f"beat.follow_prior_bpm must be within 30..240, got {self.follow_prior_bpm}")
        if not 0.0 <= self.follow_confidence <= 1.0:
            raise ValueError(f"beat.follow_confidence must be within 0..1, got {self.follow_confidence}")
        if self.clock_out and self.bpm is None:
            raise ValueError("beat.clock_out needs beat.bpm: livejam can only send clock at its own tempo")


@dataclass(frozen=True)
class DaemonConfig:
    seed: int | None = None
    midi: MidiConfig = field(default_factory=MidiConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    performer: PerformerConfig = field(default_factory=PerformerConfig)
    neural: NeuralConfig = field(default_factory=NeuralConfig)
    beat: BeatConfig = field(default_factory=BeatConfig)
    chords: ChordConfig = field(default_factory=ChordConfig)
    sound: SoundConfig = field(default_factory=SoundConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    # How often the main thread checks the output port and the worker threads.
    health_check_s: float = 0.5

    def __post_init__(self) -> None:
        check_ranges(self)
