"""One user's transactions on their document take turns within this process.

Every write to a user's lists is a transaction now (the write and its change, storage.changes),
and two transactions writing one document conflict: the later one aborts and the driver runs it
again after a pause. Four concurrent writes of one user (a client with four connections) spent
most of their time in those retries (measured: 3 writes/s where they were 14). Taking turns here
costs nothing the database did not already serialize, and leaves conflicts to writes from other
processes, which the driver's retries still handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class _Turn:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.present = 0  # tasks holding or waiting; the entry goes at 0


_turns: dict[str, _Turn] = {}


@asynccontextmanager
async def user_turn(user_id: str) -> AsyncIterator[None]:
    """Holds this process's turn of the user's document for the block. Memory: one small entry
    per user with a transaction under way."""
    turn = _turns.get(user_id)
    if turn is None:
        turn = _turns[user_id] = _Turn()
    turn.present += 1
    try:
        async with turn.lock:
            yield
    finally:
        turn.present -= 1
        if turn.present == 0:
            del _turns[user_id]
