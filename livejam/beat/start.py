"""A live session's beat clock as the options ask for it: the sources, the count-in, the clock we send."""
from __future__ import annotations

import logging

from livejam.beat.countin import count_in_for
from livejam.beat.live import BeatClock
from livejam.beat.midiclock import ClockOut
from livejam.clock import RealClock
from livejam.config import BeatConfig

log = logging.getLogger(__name__)

START_DELAY_S = 0.25  # with our own tempo, the count-in's first click comes this long after the start


def start_beat_clock(cfg: BeatConfig, now: float) -> tuple[BeatClock, ClockOut | None, list]:
    """The beat clock; with our own tempo (`--bpm`), beat 0 after the count-in, the count-in's
    clicks (to submit) and the MIDI clock we send (`clock_out`), else None and no clicks."""
    link = None
    if cfg.link:
        from livejam.beat.link import LinkSource

        link = LinkSource(bpm=cfg.bpm or 120.0, quantum=cfg.meter, clock=RealClock.now)
    beat = BeatClock(cfg, t0=now, link=link)
    if cfg.bpm is None:
        return beat, None, []
    beat0 = now + START_DELAY_S + cfg.count_in_bars * cfg.meter * 60.0 / cfg.bpm
    beat.start(beat0)
    clicks = count_in_for(cfg, beat0)
    clock_out = ClockOut(beat, now=now) if cfg.clock_out else None
    log.info("tempo %g bpm, %d/4; beat 0 in %.2f s%s", cfg.bpm, cfg.meter, beat0 - now,
             "; sending MIDI clock" if clock_out else "")
    return beat, clock_out, clicks
