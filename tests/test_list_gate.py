"""storage.list_gate: a rewrite of a user's list waits for the writes under way, new writes wait
for the rewrite, other users' writes never wait, and nothing is kept once the list is idle."""

from __future__ import annotations

import asyncio

import pytest

from storage import list_gate
from storage.list_gate import ListGate

pytestmark = pytest.mark.asyncio


async def test_a_rewrite_waits_for_writes_under_way_and_new_writes_wait_for_it() -> None:
    gate = ListGate()
    order: list[str] = []
    write_may_end, rewrite_may_end = asyncio.Event(), asyncio.Event()

    async def write(name: str, user_id: str, hold: asyncio.Event | None = None) -> None:
        async with gate.write(user_id):
            order.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} out")

    async def rewrite() -> None:
        async with gate.rewrite("alice"):
            order.append("rewrite in")
            await rewrite_may_end.wait()
            order.append("rewrite out")

    first = asyncio.create_task(write("first", "alice", write_may_end))
    await asyncio.sleep(0)
    rewriting = asyncio.create_task(rewrite())
    await asyncio.sleep(0)
    second = asyncio.create_task(write("second", "alice"))
    other_user = asyncio.create_task(write("bob", "bob"))
    await other_user  # another user's write never waits
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["first in", "bob in", "bob out"]
    write_may_end.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert order[-2:] == ["first out", "rewrite in"]
    rewrite_may_end.set()
    await asyncio.gather(first, rewriting, second)
    assert order[-3:] == ["rewrite out", "second in", "second out"]
    assert gate._users == {}


async def test_a_write_goes_ahead_once_it_waited_its_longest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(list_gate, "WRITE_WAIT_S", 0.01)
    gate = ListGate()
    async with gate.rewrite("alice"):
        async with gate.write("alice"):
            written = True
    assert written and gate._users == {}
