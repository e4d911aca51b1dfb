"""Turns, within this process, between a user's ordinary writes to one embedded list and a
rewrite of the whole list (an import, its undo): a rewrite reads the list, merges thousands of
entries and writes them back, and the user's own writes landing in between would make it start
over (for ever, at a few dozen writes a second). So while a rewrite waits or runs, the user's new
writes to that list wait for it; a rewrite waits for the writes already under way.

The turns only make rewrites finish; what keeps the list correct is the revision check of the
rewrite (storage.embedded_list), which also holds for writes from other processes, that no turn
here can hold.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# A write waits at most this long for a rewrite, then goes ahead (the rewrite then starts over):
# a rewrite that hangs on the database must not stall the user's writes behind it for longer.
WRITE_WAIT_S = 10.0


class _Turns:
    """One user's list: who is using it, and a signal that wakes every waiter on each change."""

    def __init__(self) -> None:
        self.present = 0  # tasks holding or waiting (the entry is dropped at 0)
        self.writes = 0  # ordinary writes under way
        self.rewrites = 0  # rewrites waiting or under way: new writes wait while there is one
        self.rewriting = False
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def next_change(self) -> None:
        await self._changed.wait()


class ListGate:
    """The turns of one list (by user); memory: one small entry per user with a write under way."""

    def __init__(self) -> None:
        self._users: dict[str, _Turns] = {}

    def _enter(self, user_id: str) -> _Turns:
        turns = self._users.get(user_id)
        if turns is None:
            turns = self._users[user_id] = _Turns()
        turns.present += 1
        return turns

    def _leave(self, user_id: str, turns: _Turns) -> None:
        turns.present -= 1
        turns.changed()
        if turns.present == 0:
            del self._users[user_id]

    @asynccontextmanager
    async def write(self, user_id: str) -> AsyncIterator[None]:
        """An ordinary write: waits while a rewrite of this user's list waits or runs (at most
        WRITE_WAIT_S)."""
        turns = self._enter(user_id)
        try:
            if turns.rewrites:
                try:
                    async with asyncio.timeout(WRITE_WAIT_S):
                        while turns.rewrites:
                            await turns.next_change()
                except TimeoutError:
                    pass
            turns.writes += 1
            try:
                yield
            finally:
                turns.writes -= 1
        finally:
            self._leave(user_id, turns)

    @asynccontextmanager
    async def rewrite(self, user_id: str) -> AsyncIterator[None]:
        """A whole-list rewrite: one at a time per user, after the writes under way."""
        turns = self._enter(user_id)
        turns.rewrites += 1
        try:
            while turns.rewriting or turns.writes:
                await turns.next_change()
            turns.rewriting = True
            try:
                yield
            finally:
                turns.rewriting = False
        finally:
            turns.rewrites -= 1
            self._leave(user_id, turns)
