"""The one percentile summary every counter and benchmark prints: one key scheme, in ms."""
from __future__ import annotations

from typing import Iterable

import numpy as np

KEYS = ("median_ms", "p99_ms", "p99.9_ms", "max_ms")


def summary_ms(values: Iterable[float], scale: float = 1.0) -> dict[str, float]:
    """n / median / p99 / p99.9 / max of `values * scale` in ms ({"n": 0} when empty).

    scale converts the caller's unit to ms: 1e3 for seconds, 1e-6 for nanoseconds."""
    a = np.asarray(list(values), np.float64) * scale
    if a.size == 0:
        return {"n": 0}
    p50, p99, p999 = np.percentile(a, (50, 99, 99.9))
    return {"n": int(a.size), "median_ms": float(p50), "p99_ms": float(p99), "p99.9_ms": float(p999),
            "max_ms": float(a.max())}
