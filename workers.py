"""The one way work leaves the event loop: a worker thread of a given pool.

Work that grows with a request's input (parsing, validating, merging, encoding) runs in a bounded
pool, a few at once, so that large inputs queue instead of multiplying their memory: the
service's input pool, or its image pool for Pillow (web.services). Blocking calls that grow
with no input (waiting on the embedded database's process) take asyncio's default executor
(`pool=None`). Password hashing keeps its own pool and admission queue (auth.passwords)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")


async def off_the_loop(pool: Executor | None, work: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool, work, *args)
