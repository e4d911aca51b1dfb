"""Reading statistics of a list of statuses: what a reader's own page and a public profile show.

Pure: the statuses come with the session query (or the profile's one read), the series' types
from the catalog keys the process holds (storage.catalog_keys). Counts are exact; the mean score
and the distribution ignore unscored entries (no score, or 0, which means unscored); progress
sums are kept apart by kind (chapters, volumes)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from partial_dates import date_range
from storage.catalog_keys import Keys

STATUSES = ("started", "completed", "paused", "dropped", "planned")
UNKNOWN_TYPE = "Unknown"  # a status whose series has left the catalog


@dataclass(frozen=True)
class ReadingStats:
    entries: int
    by_status: dict[str, int]
    chapters_read: float
    volumes_read: float
    rereads: int
    mean_score: float | None
    score_distribution: dict[str, int]  # "1" .. "10": scores rounded to the nearest whole (above 0, below 1: "1")
    by_type: dict[str, int]
    completed_by_year: dict[str, int]  # completed entries with a finish date, by its year


@dataclass(frozen=True)
class OwnFigures:
    """What `own_stats_expression` computed: the statuses that count, kept as stored for
    `reading_stats`, and the collection's two figures."""

    statuses: list[dict[str, Any]]
    volumes_owned: int
    series_owned: int

    @classmethod
    def of(cls, computed: dict[str, Any] | None) -> OwnFigures:
        figures = computed or {}
        return cls(statuses=list(figures.get("statuses") or []), volumes_owned=int(figures.get("volumes_owned") or 0),
                   series_owned=int(figures.get("series_owned") or 0))

    def series_ids(self) -> list[int]:
        return [entry["series_id"] for entry in self.statuses]


def reading_stats(entries: Iterable[dict[str, Any]], type_of: Callable[[int], str | None]) -> ReadingStats:
    by_status = dict.fromkeys(STATUSES, 0)
    chapters = volumes = 0.0
    rereads = 0
    scores: list[float] = []
    distribution = {str(n): 0 for n in range(1, 11)}
    by_type: dict[str, int] = {}
    completed_by_year: dict[str, int] = {}
    count = 0
    for entry in entries:
        count += 1
        status = cast(str, entry.get("status"))  # every stored entry has one (records.py)
        by_status[status] = by_status.get(status, 0) + 1
        progress = float(entry.get("progress") or 0)
        if entry.get("progress_type") == "chapters":
            chapters += progress
        else:
            volumes += progress
        rereads += int(entry.get("reread") or 0)
        score = entry.get("score")
        if score is not None and float(score) > 0:  # 0 means unscored (the contract)
            scores.append(float(score))
            distribution[str(min(10, max(1, math.floor(float(score) + 0.5))))] += 1
        kind = type_of(entry["series_id"]) or UNKNOWN_TYPE
        by_type[kind] = by_type.get(kind, 0) + 1
        end = entry.get("end")
        if status == "completed" and end:
            completed_by_year[end[:4]] = completed_by_year.get(end[:4], 0) + 1
    return ReadingStats(
        entries=count, by_status=by_status, chapters_read=chapters, volumes_read=volumes, rereads=rereads,
        mean_score=round(sum(scores) / len(scores), 2) if scores else None, score_distribution=distribution,
        by_type=dict(sorted(by_type.items())), completed_by_year=dict(sorted(completed_by_year.items())),
    )


@dataclass(frozen=True)
class HistoryFigures:
    """The reading history's general figures (`GET /user/reading-history/stats/general`): the
    counts and the mean score as `reading_stats` has them, and the span of the reading dates."""

    stats: ReadingStats
    first_date: str | None  # the earliest start or end date an entry gives, as given (partial or not)
    last_date: str | None  # the latest


def history_figures(entries: list[dict[str, Any]]) -> HistoryFigures:
    """Linear in the entries: callers run it off the event loop."""
    dates = [date for entry in entries for date in (entry.get("start"), entry.get("end")) if date]
    spans = []
    for date in dates:
        try:
            spans.append((date_range(date), date))
        except ValueError:
            continue  # not a date (hand-edited data): it says nothing about when
    # A partial date spans its days: `2020` begins before `2020-03-01` and ends after it.
    first = min(spans, key=lambda span: (span[0][0], -len(span[1])), default=None)
    last = max(spans, key=lambda span: (span[0][1], len(span[1])), default=None)
    return HistoryFigures(reading_stats(entries, lambda _series_id: None),
                          first[1] if first else None, last[1] if last else None)


def types_from(keys: Keys) -> Callable[[int], str | None]:
    """A series' type as the catalog keys the process holds say (None: not in the catalog)."""
    return lambda series_id: getattr(keys.of.get(series_id), "type", None)


def own_stats_expression(client: int | None) -> dict[str, Any]:
    """What the session query brings for the owner's statistics, computed by the database from
    the user's document: the statuses of `client` with only the fields that count, and the
    collection's two figures (no item travels)."""
    def of_client(field: str) -> dict[str, Any]:
        listed = {"$ifNull": [f"${field}", []]}
        if client is None:
            return listed
        return {"$filter": {"input": listed, "cond": {"$eq": ["$$this.client", client]}}}

    fields = ("series_id", "status", "progress_type", "progress", "reread", "score", "start", "end")
    return {
        "statuses": {"$map": {"input": of_client("statuses"),
                              "in": {name: f"$$this.{name}" for name in fields}}},
        "volumes_owned": {"$size": of_client("collection")},
        "series_owned": {"$size": {"$setUnion": [{"$map": {"input": of_client("collection"),
                                                              "in": "$$this.series_id"}}]}},
    }
