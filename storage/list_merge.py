"""The one merge engine of the list imports (the account file, MyAnimeList files): what a list
becomes when entries from a file meet the entries it holds, entry by entry, so that a dry run
and an apply report the same thing and an apply writes exactly what was reported.

An entry the list lacks is added. One it holds with the same values (the `ignored` fields aside)
is unchanged. Otherwise the merge rule decides what the entry becomes: `keep` the held one,
`replace` it by the file's, or `greater` (reading statuses only): the furthest progress.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from partial_dates import date_range, ends_before_start

Entry = dict[str, Any]
MergeRule = Callable[[Entry, Entry], Entry]  # (held, from the file) -> what the entry becomes
Action = Literal["add", "update", "unchanged", "kept"]


def keep(held: Entry, incoming: Entry) -> Entry:
    return held


def replace(held: Entry, incoming: Entry) -> Entry:
    return incoming


@dataclass(frozen=True)
class EntryChange:
    key: Hashable
    action: Action
    before: Entry | None  # the held entry; None for an add
    after: Entry  # what the list holds after the merge
    changed: tuple[str, ...] = ()  # for an update: the fields whose values differ


@dataclass
class ListOutcome:
    add: int = 0
    change: int = 0
    kept: int = 0
    unchanged: int = 0
    unknown: list[int] = field(default_factory=list)
    refused: int = 0


@dataclass
class Merged:
    entries: list[Entry]
    changes: list[EntryChange]
    outcome: ListOutcome


def merge_entries(held: list[Entry], incoming: Iterable[Entry], key: str, rule: MergeRule,
                  ignored: tuple[str, ...] = ()) -> Merged:
    """`held` merged with `incoming` (whose keys are unique), entry order kept, new ones last."""
    entries = list(held)
    position = {entry[key]: index for index, entry in enumerate(entries)}
    changes: list[EntryChange] = []
    outcome = ListOutcome()
    for entry in incoming:
        index = position.get(entry[key])
        if index is None:
            position[entry[key]] = len(entries)
            entries.append(entry)
            changes.append(EntryChange(entry[key], "add", None, entry))
            outcome.add += 1
            continue
        current = entries[index]
        if not _differing(current, entry, ignored):
            changes.append(EntryChange(entry[key], "unchanged", current, current))
            outcome.unchanged += 1
            continue
        result = rule(current, entry)
        changed = _differing(current, result, ignored)
        if not changed:
            changes.append(EntryChange(entry[key], "kept", current, current))
            outcome.kept += 1
            continue
        entries[index] = result
        changes.append(EntryChange(entry[key], "update", current, result, changed))
        outcome.change += 1
    return Merged(entries, changes, outcome)


def _differing(held: Entry, other: Entry, ignored: tuple[str, ...]) -> tuple[str, ...]:
    """The fields of `other` whose values differ from `held`'s, in `other`'s order."""
    return tuple(name for name, value in other.items() if name not in ignored and held.get(name) != value)


_SETTLED = ("completed", "dropped")  # a status `greater` never moves away from
_UNDER_WAY = ("started", "paused")


def greater_status(held: Entry, incoming: Entry) -> Entry:
    """The `greater` merge of two reading statuses of one series: the higher progress (of the
    same kind; a held progress of another kind stays unless it is 0), a status never moved away
    from completed or dropped nor back to planned, the earlier start and the later finish, the
    higher reread count. The file's score and priority when it has them; the held notes unless
    there are none; the held visibility."""
    result = dict(held)
    if held["progress_type"] == incoming["progress_type"]:
        result["progress"] = max(held["progress"], incoming["progress"])
    elif not held["progress"]:
        result["progress_type"], result["progress"] = incoming["progress_type"], incoming["progress"]
    if held["status"] not in _SETTLED and not (incoming["status"] == "planned" and held["status"] in _UNDER_WAY):
        result["status"] = incoming["status"]
    start = _earliest(held.get("start"), incoming.get("start"))
    end = _latest(held.get("end"), incoming.get("end"))
    # The held end may be missing while the file's ends before the held start: then both stay.
    if not ends_before_start(start, end):
        result["start"], result["end"] = start, end
    result["reread"] = _greatest(held.get("reread"), incoming.get("reread"))
    if incoming.get("score") is not None:
        result["score"] = incoming["score"]
    result["priority"] = incoming["priority"]
    if not held.get("notes"):
        result["notes"] = incoming.get("notes")
    if "last_update" in incoming:
        result["last_update"] = incoming["last_update"]
    return result


def _earliest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if date_range(a)[0] <= date_range(b)[0] else b


def _latest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if date_range(a)[1] >= date_range(b)[1] else b


def _greatest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


MERGE_RULES: dict[str, MergeRule] = {"keep": keep, "replace": replace, "greater": greater_status}
