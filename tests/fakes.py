"""A tiny performer with known behaviour, for engine tests independent of the
real performers: it answers each phrase (silence after all keys up) with the
phrase's own notes shifted up an octave, and cancels on barge-in."""
from __future__ import annotations

from livejam.events import TimedNote
from livejam.performers.base import Cancel, ChordSlots


class FakeCallResponse(ChordSlots):  # ChordSlots: keeps the chart it is given
    def __init__(self, silence_s: float = 0.5, lookahead_s: float = 0.01):
        self.silence_s = silence_s
        self.lookahead_s = lookahead_s
        self.held: set[int] = set()
        self.phrase: list[TimedNote] = []
        self.last = None
        self.answer: list[TimedNote] = []  # decided, handed out as they come within the lookahead
        self.out: list = []
        self.counters = {"answers": 0, "cancels": 0}

    def hear(self, note: TimedNote, now: float) -> None:
        if note.velocity > 0:
            if self.answer or self.out:
                self.answer, self.out = [], [Cancel(now)]
                self.counters["cancels"] += 1
            self.held.add(note.pitch)
        else:
            self.held.discard(note.pitch)
        self.phrase.append(note)
        self.last = now

    def control(self, number: int, value: int, now: float) -> None:
        pass

    def poll(self, now: float) -> list:
        if self.phrase and not self.held and now >= self.last + self.silence_s:
            start = self.phrase[0].time
            base = now + self.lookahead_s
            self.answer = [TimedNote(base + n.time - start, 0, min(127, n.pitch + 12), n.velocity)
                           for n in self.phrase]
            self.phrase = []
            self.counters["answers"] += 1
        while self.answer and self.answer[0].time <= now + self.lookahead_s:
            self.out.append(self.answer.pop(0))
        out, self.out = self.out, []
        return out

    def next_wakeup(self, now: float) -> float:
        if self.answer:
            return max(now, self.answer[0].time - self.lookahead_s)
        if self.phrase and not self.held:
            return max(now, self.last + self.silence_s)
        return now + 0.25

    def close(self, now: float) -> list[TimedNote]:
        return []  # relies on the engine's ledger/panic to end what sounds
