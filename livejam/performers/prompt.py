"""`--prompt FILE`: a MIDI file that primes the context before the session starts."""
from __future__ import annotations

import logging

from livejam.events import notes_to_events
from livejam.midi.files import read_midi_tracks

log = logging.getLogger(__name__)


def prime_context(engine, tracker, vocab, path: str) -> None:
    """Prefill the engine with the file's notes (all its tracks as the human's part), at most half
    the context so that the session has room; its notes are not sounding afterwards."""
    notes = [n for _, track in read_midi_tracks(path) for n in track]
    events = notes_to_events(notes, vocab, bos=False)
    window = events[-(engine.context // 2):]
    engine.prefill(window)
    for token in window:
        tracker.observe(token)
    tracker.reset()
    log.info("primed the context with %d events of %s", len(window), path)
