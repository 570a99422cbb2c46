"""A token bucket on messages' own timestamps: what bounds a flood of incoming MIDI (clock ticks,
start/stop spam) without reading a clock. Pure."""
from __future__ import annotations


class RateLimit:
    """A token bucket on the messages' own timestamps: `rate` a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), None

    def allow(self, t: float) -> bool:
        if self.t is not None:
            self.tokens = min(self.burst, self.tokens + max(0.0, t - self.t) * self.rate)
        self.t = t if self.t is None else max(self.t, t)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
