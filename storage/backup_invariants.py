"""What must hold across the collections of a backup, checked on its files: a backup reads each
collection apart (SecantusDB's snapshot does not hold across them), so `backup` retakes one that
fails these, and `restore` checks them again before it writes anything.

- every avatar reference names a stored file with all its chunks;
- every user has its `usernames` row (the lower-cased name, naming the user's `_id`), and every
  `usernames` row names a user of that name: otherwise the user cannot log in (401) while anyone
  can register the name, or a name stays taken by nobody;
- every series' `rating_count` and `rating_half_points` are the count and sum of the users'
  ratings of it, as `RatingStore.recount` computes them.

One pass over each file, documents streamed; what is kept is a few fields per user, per name and
per rated series: linear in the backup, never its documents.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import bson

from storage.avatars import BUCKET
from storage.ratings import Drift, half_points


@dataclass(frozen=True)
class Findings:
    problem: str | None  # the first reference across collections that does not hold
    drift: list[Drift]  # series whose aggregates differ from the ratings

    @property
    def consistent(self) -> bool:
        return self.problem is None and not self.drift


def read(path: Path | None) -> Iterator[dict[str, Any]]:
    """The file's documents one at a time (a chunks file can be large)."""
    if path is None:
        return
    # GzipFile is a binary file, though typeshed does not declare it an IO[bytes].
    with cast(IO[bytes], gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as f:
        yield from bson.decode_file_iter(f)


def describe(drift: Drift) -> str:
    return (f"series {drift.series_id}'s rating aggregates (count {drift.stored_count}, half points "
            f"{drift.stored_half_points}) differ from its users' ratings (count {drift.true_count}, "
            f"half points {drift.true_half_points})")


def check(data: dict[str, Path]) -> Findings:
    """`data`: each collection's documents file. Reads `users` once, the others it needs once."""
    lengths = {d["_id"]: d["length"] for d in read(data.get(f"{BUCKET}.files"))}
    stored: dict[Any, int] = {}
    for chunk in read(data.get(f"{BUCKET}.chunks")):
        stored[chunk["files_id"]] = stored.get(chunk["files_id"], 0) + len(chunk["data"])
    names = {row["_id"]: row["user_id"] for row in read(data.get("usernames"))}
    users: dict[Any, str] = {}  # user id -> lower-cased name
    totals: dict[Any, tuple[int, int]] = {}  # series id -> (count, half points) of the ratings
    problem: str | None = None
    for user in read(data.get("users")):
        name = str(user.get("username", "")).lower()
        users[user["_id"]] = name
        image = user.get("profile_image") or {}
        for resolution in ("high", "scaled"):
            file_id = image.get(resolution)
            if file_id is not None and (file_id not in lengths or stored.get(file_id, 0) != lengths[file_id]):
                problem = problem or f"user {user['_id']}'s {resolution} image {file_id} is not whole in the backup"
        if names.get(name) != user["_id"]:
            owner = names.get(name)
            problem = problem or (f"user {user['_id']} ({user.get('username')!r}) has no usernames row"
                                  if owner is None else
                                  f"user {user['_id']}'s name {name!r} is the usernames row of user {owner}")
        for rating in user.get("ratings") or []:
            count, half = totals.get(rating["series_id"], (0, 0))
            totals[rating["series_id"]] = (count + 1, half + half_points(rating["rating"]))
    for name, user_id in names.items():
        if problem is None and users.get(user_id) != name:
            problem = (f"usernames row {name!r} names user {user_id}, which the backup does not hold"
                       if user_id not in users else
                       f"usernames row {name!r} names user {user_id}, whose name is {users[user_id]!r}")
    drift = []
    for series in read(data.get("series")):
        kept = (int(series.get("rating_count") or 0), int(series.get("rating_half_points") or 0))
        true = totals.get(series["_id"], (0, 0))
        if kept != true:
            drift.append(Drift(series["_id"], *kept, *true))
    return Findings(problem, drift)
