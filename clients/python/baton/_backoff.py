"""Reconnect delays: exponential backoff with full jitter (docs/protocol.md, section 16)."""

from __future__ import annotations

import random
from typing import Callable


def backoff_delay(failures: int, initial: float, maximum: float, uniform: Callable[[float, float], float] = random.uniform) -> float:
    """A delay drawn uniformly from ``[0, min(maximum, initial * 2**failures)]`` seconds."""
    cap = min(maximum, initial * 2 ** min(max(failures, 0), 30))
    return uniform(0.0, cap)
