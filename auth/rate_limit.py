"""In-memory sliding-window limits. The service is one process, so memory is the right place."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

# Bounds the memory an attacker can make us spend by spraying keys.
MAX_TRACKED_KEYS = 100_000


class SlidingWindowLimiter:
    """Allows at most `limit` recorded events per key within `window_s` seconds."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._events: dict[Hashable, deque[float]] = {}

    def _recent(self, key: Hashable) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        cutoff = self._clock() - self.window_s
        while events and events[0] <= cutoff:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def is_limited(self, key: Hashable) -> bool:
        events = self._recent(key)
        return events is not None and len(events) >= self.limit

    def record(self, key: Hashable) -> None:
        if len(self._events) >= MAX_TRACKED_KEYS:
            self._prune()
        events = self._recent(key)
        if events is None:
            events = self._events[key] = deque()
        events.append(self._clock())

    def reset(self, key: Hashable) -> None:
        self._events.pop(key, None)

    def _prune(self) -> None:
        for key in list(self._events):
            self._recent(key)
        # Still full of live keys: drop the oldest half rather than grow without bound.
        if len(self._events) >= MAX_TRACKED_KEYS:
            oldest = sorted(self._events, key=lambda k: self._events[k][-1])
            for key in oldest[: len(oldest) // 2]:
                del self._events[key]
