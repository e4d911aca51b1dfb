"""Reading statuses, embedded in the user's document, and the reading-history query over them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from storage.catalog_keys import ORDER_ATTEMPTS, CatalogKeys, Keys
from storage.changes import READING_STATUS, ChangeFeed
from storage.embedded_list import EmbeddedList, Feed, stored_fields
from storage.list_gate import ListGate
from storage.outcome import WriteOutcome
from storage.records import SeriesRecord, StatusRecord, StoredList

PRIORITY_RANK = {"low": 1, "mid": 2, "high": 3}
STATUS_FIELD_OF_ORDER = {"update": "last_update", "start-date": "start", "end-date": "end"}
NAME_ORDER = "name"
# What a list item shows of a series; never the derived sort and search fields.
SERIES_CARD_FIELDS: dict[str, int] = {
    field: 1 for field in ("name", "type", "slug", "origin", "client", "titles", "descriptions", "first_volume",
                           "rating_count", "rating_half_points")
}


@dataclass(frozen=True)
class HistoryRequest:
    order: str  # update, priority, score, start-date, end-date, or NAME_ORDER
    descending: bool
    offset: int
    limit: int
    search: str | None
    language: str  # a language code; name orders sort by the title shown in it
    client: int | None
    status: str | None = None  # only the entries of this reading status (started, completed, ...)

    @property
    def needs_series(self) -> bool:
        """Whether filtering or ordering needs catalog fields, not only the statuses."""
        return self.order == NAME_ORDER or self.search is not None


@dataclass(frozen=True)
class StatusFields:
    """What the user sets of a reading status; the store adds the series, client and time."""

    visibility: str
    progress_type: str
    progress: float
    status: str
    reread: int | None
    score: float | None
    priority: str
    start: str | None
    end: str | None
    notes: str | None

    def stored(self, series_id: int, client: int, now: Any) -> dict[str, Any]:
        """The whole stored entry, its fields in the order the status routes have always stored."""
        return {"series_id": series_id, "client": client, "visibility": self.visibility,
                "progress_type": self.progress_type, "progress": self.progress, "status": self.status,
                "reread": self.reread, "score": self.score, "priority": self.priority, "start": self.start,
                "end": self.end, "notes": self.notes, "last_update": now}


@dataclass(frozen=True)
class HistoryPage:
    entries: list[tuple[StatusRecord, SeriesRecord]]
    total: int


class ReadingStatusStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], keys: CatalogKeys, gate: ListGate,
                 changes: ChangeFeed) -> None:
        self._users = db["users"]
        self._series = db["series"]
        self._keys = keys
        self._statuses = EmbeddedList(db, "statuses", key="series_id", feed=Feed(changes, READING_STATUS, history=True),
                                      gate=gate)

    async def add(self, user_id: str, series_id: int, client: int, fields: StatusFields, now: Any) -> WriteOutcome:
        """One conditional push: of concurrent adds for one series, exactly one succeeds."""
        entry = fields.stored(series_id, client, now)
        added = await self._statuses.push_unique(user_id, series_id, entry, now)
        return WriteOutcome.DONE if added else WriteOutcome.CONFLICT

    async def update(self, user_id: str, series_id: int, client: int, fields: StatusFields,
                     now: Any, unchanged: StatusRecord | None = None) -> WriteOutcome:
        """Replaces the entry's fields in place, atomically; with `unchanged`, only if the entry
        is still exactly that (else CHANGED)."""
        entry = fields.stored(series_id, client, now)
        replaced = await self._statuses.replace(user_id, series_id, entry, now, unchanged=stored_fields(unchanged))
        return WriteOutcome.DONE if replaced else await self._statuses.why_missed(user_id, series_id, unchanged)

    async def delete(self, user_id: str, series_id: int, now: Any, unchanged: StatusRecord | None = None) -> WriteOutcome:
        removed = await self._statuses.remove(user_id, series_id, now, unchanged=stored_fields(unchanged))
        return WriteOutcome.DONE if removed else await self._statuses.why_missed(user_id, series_id, unchanged)

    async def entry(self, user_id: str, series_id: int) -> StatusRecord | None:
        """The user's status of the series as stored now, or None."""
        found = await self._statuses.entry(user_id, series_id)
        return StatusRecord.of(found) if found is not None else None

    async def history(self, user_id: str, request: HistoryRequest, entries: StoredList) -> HistoryPage:
        """The user's `entries` (read with the session) filtered, ordered and paged here; then one
        read of the page's series. A name order or a search takes the catalog's keys from the
        process (storage.catalog_keys), so no order joins the whole list."""
        mine = filtered(entries.stored, request)
        for _ in range(ORDER_ATTEMPTS):
            keys = await self._keys.series(e["series_id"] for e in mine) if request.needs_series else None
            ordered = self._ordered(mine, request, keys)
            page = ordered[request.offset: request.offset + request.limit]
            wanted = {"_id": {"$in": [e["series_id"] for e in page]}}
            if keys is None:
                # At most 100 ids: SecantusDB's $in grows with the square of the list, so never more.
                found = await self._series.find(wanted, SERIES_CARD_FIELDS).to_list(length=None) if page else []
                break
            found, current = await self._keys.read_current(
                self._series, [{"$match": wanted}, {"$project": SERIES_CARD_FIELDS}], keys.version)
            if current:
                break  # else an import changed the catalog since the keys were read: order again
        cards = {series["_id"]: SeriesRecord.of(series) for series in found}
        return HistoryPage(
            entries=[(StatusRecord.of(entry), cards[entry["series_id"]]) for entry in page
                     if entry["series_id"] in cards],
            total=len(ordered),
        )

    @staticmethod
    def _ordered(entries: list[dict[str, Any]], request: HistoryRequest, keys: Keys | None) -> list[dict[str, Any]]:
        """Every order of the history, and its one rule for a status whose series has left the
        catalog: it counts and keeps its place (last in a name order); a page shows only what
        has a series. A search matches only series that exist."""
        if request.search is not None and keys is not None:
            term = request.search.casefold()
            entries = [e for e in entries if (k := keys.of.get(e["series_id"])) is not None and k.matches(term)]
        if request.order == NAME_ORDER and keys is not None:
            return order_by_name(entries, keys, request.language, request.descending)
        return order_by_status_field(entries, request.order, request.descending)


def filtered(entries: list[dict[str, Any]], request: HistoryRequest) -> list[dict[str, Any]]:
    """The entries of the request's client and status, in their stored order: one pass over the
    list the session read, before anything is ordered or any series is read."""
    if request.client is None and request.status is None:
        return entries
    return [e for e in entries if (request.client is None or e.get("client") == request.client)
            and (request.status is None or e.get("status") == request.status)]


def order_by_name(entries: list[dict[str, Any]], keys: Keys, language: str, descending: bool) -> list[dict[str, Any]]:
    """By the title shown in `language` (casefolded), ties by series id; no series: last."""
    named: list[tuple[str, int, dict[str, Any]]] = []
    missing: list[dict[str, Any]] = []
    for entry in entries:
        found = keys.of.get(entry["series_id"])
        if found is None:
            missing.append(entry)
        else:
            named.append((found.sort_title(language), entry["series_id"], entry))
    # Ties by ascending series id in both directions: negated, the id sorts reversed back.
    named.sort(key=(lambda n: (n[0], -n[1])) if descending else (lambda n: (n[0], n[1])), reverse=descending)
    missing.sort(key=lambda e: e["series_id"])
    return [entry for _, _, entry in named] + missing


def _status_sort_value(entry: dict[str, Any], order: str) -> Any:
    if order == "priority":
        return PRIORITY_RANK.get(entry.get("priority") or "")
    if order == "score":
        score = entry.get("score")
        return score if score else None
    return entry.get(STATUS_FIELD_OF_ORDER[order])


def order_by_status_field(entries: list[dict[str, Any]], order: str, descending: bool) -> list[dict[str, Any]]:
    """By value, ties by series id, missing values last (in both directions)."""
    by_id = sorted(((_status_sort_value(e, order), e) for e in entries), key=lambda pair: pair[1]["series_id"])
    valued = [(v, e) for v, e in by_id if v is not None]
    missing = [e for v, e in by_id if v is None]
    # Python's sort is stable with reverse=True too, so ties keep the series id order.
    valued.sort(key=lambda pair: pair[0], reverse=descending)
    return [e for _, e in valued] + missing
