"""Waiting for something to happen, with a deadline: never a fixed sleep that hopes it has."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0, what: str = "condition",
                poll_s: float = 0.01) -> None:
    """Returns once `condition()` (a function or a coroutine function) is true; AssertionError
    naming `what` if it is still false after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return
        assert time.monotonic() < deadline, f"{what} not met within {timeout_s} s"
        await asyncio.sleep(poll_s)
