"""The live beat clock: where the beat is now, from one of livejam's own tempo (`--bpm`), incoming
MIDI clock, an Ableton Link session or the player's own tempo (following).

- live.py: BeatClock, the live BeatMap (livejam/beatmap.py's contract) the performers read, fed by
  the performer thread;
- midiclock.py: the MIDI clock livejam sends as master; countin.py: the clicks before beat 0;
- tempo.py: the tempo tracker that follows the player; link.py: the Link session;
- snapshot.py: the immutable map the clock publishes; start.py: a session's clock as its options ask.
"""
