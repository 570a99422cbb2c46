"""The benchmark's "immediate reply" path: every heard note costs a model step, then a reply at once.

    python -m livejam.measure.reply --model PATH [--client NAME] [--threads N]

runs the live daemon (real ports, queue, performer thread, scheduler, ledger)
with `ReplyPerformer`: on each heard note-on or note-off it reads the chord it
hears under the note (the chord head, as the neural performer does), feeds the
note, samples one event (every field) and emits a reply note now; the reply is
fed to the model (it hears what it played) only after it was handed out, in
`next_wakeup`, so that step is not on the reply's path. A
note-on is answered by a note-on at the sampled pitch, the matching note-off
by that reply's note-off. Minus the bare transport's round trip this is the
engine's input-to-output overhead including inference, not only the MIDI
plumbing (`livejam run --performer echo` measures that part).

Not a musical engine. Replies stay in `reply_range`, away from the pitches the
benchmark sends (40..79), so the daemon's echo filter never takes a sent note
for an echo of a reply.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import deque

import numpy as np

from livejam.beatmap import FreeTime
from livejam.engine import Constraints, Engine, EventSampler, NoteTracker
from livejam.events import CHORD, DT, PART, PITCH, POS, VEL, EventCoder, TimedNote
from livejam.stats import summary_ms
from livejam.performers.base import HUMAN_PART, MACHINE_PART, PerformerBase

log = logging.getLogger(__name__)


class ReplyPerformer(PerformerBase):
    """Performer protocol (hear/control/poll/next_wakeup/close); owns its Engine."""

    def __init__(self, engine: Engine, seed: int = 0, reply_range: tuple[int, int] = (84, 108)):
        self.engine = engine
        self.vocab = engine.vocab
        self.reply_range = reply_range
        self.constraints = Constraints(parts=(MACHINE_PART,), pitch_range=reply_range, top_p=0.95)
        self.sampler = EventSampler(self.vocab)
        self.tracker = NoteTracker(self.vocab)
        self.rng = np.random.default_rng(seed)
        self.coder: EventCoder | None = None  # free time: the benchmark sends no clock
        self.chord = 0  # the chord the model hears now (what the replies are fed with)
        self.replies: dict[int, int] = {}  # heard pitch -> the reply pitch sounding for it
        self._out: list[TimedNote] = []
        self._unfed: list[TimedNote] = []  # replies handed out, not yet fed to the model
        self.step_ms: deque[float] = deque(maxlen=100_000)  # feed the heard note + sample (the reply path)
        self.counters = {"heard": 0, "replies": 0}

    def warm_up(self, steps: int = 64) -> None:
        """Run the graphs before the ports open, so the first reply is not the slowest."""
        for _ in range(steps):
            self.engine.feed(self.sampler.sample(self.engine, self.constraints, self.tracker, self.rng))
        self.engine.reset()
        self.tracker.reset()

    def hear(self, note: TimedNote, now: float) -> None:
        t0 = time.perf_counter()
        self.counters["heard"] += 1
        if not 0 <= note.pitch < self.vocab.n_pitch:
            return
        self._feed_replies()  # the context keeps the order things happened in
        if self.coder is None:
            self.coder = EventCoder(self.vocab, FreeTime(note.time), note.time)
        coder = self.coder
        row = np.asarray(coder.encode(TimedNote(max(note.time, coder.time), HUMAN_PART, note.pitch, note.velocity)),
                         np.int64)
        self.chord = row[CHORD] = int(np.argmax(self.engine.logits(CHORD, (row[PART], row[DT], row[POS]))))  # heard harmony
        self._feed(row)
        token = self.sampler.sample(self.engine, self.constraints, self.tracker, self.rng, next_pos=coder.next_pos)
        if note.velocity > 0:
            if note.pitch in self.replies:
                return  # already answered this key (a repeated note-on): nothing new to say
            pitch = self._free_pitch(int(token[PITCH]))
            reply = TimedNote(now, MACHINE_PART, pitch, max(1, self.vocab.velocity(int(token[VEL])) or 64))
            self.replies[note.pitch] = pitch
        else:
            pitch = self.replies.pop(note.pitch, None)
            if pitch is None:
                return
            reply = TimedNote(now, MACHINE_PART, pitch, 0)
        self._out.append(reply)
        self._unfed.append(reply)
        self.counters["replies"] += 1
        self.step_ms.append((time.perf_counter() - t0) * 1e3)

    def _feed_replies(self) -> None:
        coder = self.coder
        for reply in self._unfed:
            self._feed(coder.encode(TimedNote(max(reply.time, coder.time), reply.part, reply.pitch, reply.velocity),
                                    self.chord))
        self._unfed.clear()

    def _free_pitch(self, sampled: int) -> int:
        """The sampled pitch if it is in range and silent, else the nearest that is (the ledger would refuse it)."""
        lo, hi = self.reply_range
        busy = set(self.replies.values())
        for p in sorted(range(lo, hi + 1), key=lambda p: abs(p - sampled)):
            if p not in busy:
                return p
        return lo  # every reply pitch held: the ledger refuses it, the sender times out, it is counted

    def _feed(self, token) -> None:
        self.engine.feed(token)
        self.tracker.observe(token)

    def control(self, number: int, value: int, now: float) -> None:
        pass

    def poll(self, now: float) -> list[TimedNote]:
        out, self._out = self._out, []
        return out

    def next_wakeup(self, now: float) -> float:
        if self._out:
            return now
        self._feed_replies()  # called after poll's output went to the scheduler: off the reply path
        if self.engine.idle(max_steps=4):  # shadow context work, off the reply path
            return now
        return now + 0.25

    def close(self, now: float) -> list[TimedNote]:
        offs = [TimedNote(now, MACHINE_PART, p, 0) for p in sorted(self.replies.values())]
        self.replies.clear()
        return offs

    def latency_stats(self) -> dict:
        return summary_ms(self.step_ms)


def main(argv: list[str] | None = None) -> int:
    from livejam.config import DaemonConfig, load
    from livejam.daemon import Daemon
    from livejam.engine import ModelError, open_engine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--client", default="livejam-reply", help="JACK client name prefix of the ports")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads")
    ap.add_argument("--backend", default="jack")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        engine = open_engine(args.model, intra_op_threads=args.threads)
    except ModelError as e:
        print(f"livejam.reply: {e}", file=sys.stderr)
        return 2
    # the performer's own setting: shadow steps wait for idle time
    engine.defer_shadow = True
    performer = ReplyPerformer(engine, seed=args.seed)
    performer.warm_up()
    config = load(DaemonConfig, None, [f"midi.client_name={json.dumps(args.client)}", "record.enabled=false",
                                       f"midi.backend={json.dumps(args.backend)}"])

    def ready(inp: str, out: str, backend: str) -> None:
        print(f"ready in={inp} out={out} providers={engine.model.providers}", flush=True)

    result = Daemon(config, performer=performer, on_ready=ready).run()
    print("stats " + json.dumps({"reply_step": performer.latency_stats(), "reason": result.reason}), flush=True)
    return result.rc


if __name__ == "__main__":
    raise SystemExit(main())
