"""`python -m bench.changes`: what the change feed's reads and an account's removal cost when the
`changes` collection is large (issue 31). Every user's changes share the collection, so a query
that scans it, or names an index (which costs SecantusDB a pass over the collection), grows with
everybody's changes, not the reader's.

Seeds USERS users of CHANGES_EACH changes each (half of them reading statuses with a history of
their own, the oldest half past the retention) straight into the embedded database, then times,
through storage (no HTTP: the database is what grows): a feed page after a cursor, a first page
(from the oldest change kept), a status's history page with its count, the account file's range,
and the removal of one user's changes. Prints the median of REPEAT runs of each.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from auth.clock import utc_now
from bench.harness import machine
from storage.account_removal import AccountRemoval
from storage.avatars import AvatarStore
from storage.changes import READING_STATUS, ChangeFeed
from storage.database import connect, database
from storage.embedded import EmbeddedDatabase
from storage.indexes import prepare_database
from storage.users import UserStore

USERS = 10
CHANGES_EACH = 20_000
REPEAT = 9


def seeded_changes(user_id: str, count: int, now: Any) -> list[dict[str, Any]]:
    """What `count` writes leave: odd numbers a status's change (20 statuses, numbered among their
    own), even ones a rating's; the older half past the retention."""
    documents = []
    for seq in range(1, count + 1):
        expires = now + (timedelta(days=-1) if seq <= count // 2 else timedelta(days=30))
        document: dict[str, Any] = {"user_id": user_id, "seq": seq, "op": "upsert", "at": now, "expires": expires}
        if seq % 2:
            series = seq % 40 + 1
            n = seq // 40 + 1
            document.update(_id=f"{user_id}:{READING_STATUS}:{series}:{n}", kind=READING_STATUS, id=str(series),
                            entry={"series_id": series, "progress": n}, n=n, before=None, fields=["progress"])
        else:
            document.update(kind="rating", id=str(seq % 300), entry={"series_id": seq % 300, "rating": 7.5},
                            purge_at=expires)
        documents.append(document)
    return documents


async def timed(work: Callable[[], Awaitable[Any]]) -> float:
    runs = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        await work()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


async def main() -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "changes": USERS * CHANGES_EACH, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="tsundoku-changes-") as name:
        server = EmbeddedDatabase(Path(name) / "db")
        await server.start_async()
        client = connect(server.uri)
        try:
            db = database(client, "bench")
            await prepare_database(db)
            now = utc_now()
            for user in range(USERS):
                documents = seeded_changes(f"user{user}", CHANGES_EACH, now)
                for start in range(0, len(documents), 5_000):
                    await db.changes.insert_many(documents[start:start + 5_000])
            feed = ChangeFeed(db, timedelta(days=90))
            reader, latest = "user3", CHANGES_EACH
            rows = {
                "feed page after a cursor (limit 100)": lambda: feed.page(reader, latest - 500, 100, now, latest),
                "first page, from the oldest kept (limit 100)": lambda: feed.page(reader, None, 100, now, latest),
                "a status's history page (limit 20) and its count": lambda: feed.history(reader, READING_STATUS, "7",
                                                                                         0, 20),
                "the account file's changes (newest 1,000)": lambda: feed.newest(reader, 1000, 2 << 20, latest),
            }
            print(f"{machine()}; {USERS * CHANGES_EACH:,} changes of {USERS} users; median of {REPEAT}")
            print("| read | ms |")
            print("|---|---|")
            for label, work in rows.items():
                results["rows"][label] = round(await timed(work), 1)
                print(f"| {label} | {results['rows'][label]} |", flush=True)
            # An account's removal: the user's document, then its changes a range at a time.
            removal = AccountRemoval(db, AvatarStore(db, UserStore(db)))
            await db.users.insert_one({"_id": "user5", "username": "user5", "change_seq": CHANGES_EACH})
            started = time.perf_counter()
            assert await removal.remove("user5")
            label = f"removing an account with {CHANGES_EACH:,} changes"
            results["rows"][label] = round((time.perf_counter() - started) * 1000, 1)
            print(f"| {label} | {results['rows'][label]} |", flush=True)
            assert await db.changes.count_documents({"user_id": "user5"}) == 0
        finally:
            await client.close()
            await server.stop_async()
    return results


if __name__ == "__main__":
    asyncio.run(main())
