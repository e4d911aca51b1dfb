"""What a MyAnimeList entry means as a reading status, and back.

Reading -> started, Completed -> completed, On-Hold -> paused, Dropped -> dropped, Plan to Read
-> planned (or MAL's numbers 1, 2, 3, 4, 6); progress in chapters when any were read, else in
volumes; dates as given, `0000-00-00` as none and `2019-05-00` as the partial date `2019-05`;
score 0 as none; times read -> reread (0 as none); comments, then the tags on a line of their
own (`Tags: ...`) -> notes; visibility private. `my_rereading`, `my_retail_volumes` and
`update_on_import` have no place in a reading status and are not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from formats.mal_xml import Cdata, MalEntry
from partial_dates import date_range, ends_before_start
from storage.reading import StatusFields
from storage.records import StatusRecord
from storage.title_keys import MAX_TITLE_CHARACTERS

MAL_TO_STATUS = {"reading": "started", "1": "started", "completed": "completed", "2": "completed",
                 "on-hold": "paused", "on hold": "paused", "onhold": "paused", "3": "paused",
                 "dropped": "dropped", "4": "dropped", "plan to read": "planned", "plantoread": "planned",
                 "6": "planned"}
STATUS_TO_MAL = {"started": "Reading", "completed": "Completed", "paused": "On-Hold", "dropped": "Dropped",
                 "planned": "Plan to Read"}
MAL_TO_PRIORITY = {"low": "low", "medium": "mid", "high": "high", "0": "low", "1": "mid", "2": "high"}
PRIORITY_TO_MAL = {"low": "Low", "mid": "Medium", "high": "High"}
DEFAULT_PRIORITY = "low"  # MAL's, for an entry that names none
TAGS_PREFIX = "Tags: "
MAX_NOTES = 10_000
MAX_PROGRESS = 1_000_000
MAX_REREAD = 1000
_MAL_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")  # [0-9]: \d takes any Unicode digit
NO_DATE = "0000-00-00"


class EntryProblem(ValueError):
    """A value of the entry that cannot become part of a reading status; the entry is skipped."""


@dataclass(frozen=True)
class FileEntry:
    """An entry as the report names it, and what it asks for."""

    line: int
    title: str
    mal_id: int | None
    fields: StatusFields | None  # None if a problem
    problem: str | None


def read_entry(entry: MalEntry) -> FileEntry:
    title_field = "manga_title" if entry.text("manga_title") else "series_title"
    title = entry.text(title_field)
    mal_id = _whole(entry, "manga_mangadb_id", 0, 10**12, default=0) if entry.text("manga_mangadb_id") else 0
    if len(title) > MAX_TITLE_CHARACTERS:
        # No catalog title is longer; the report shows its beginning.
        return FileEntry(entry.line, title[:MAX_TITLE_CHARACTERS] + "…", mal_id or None, None,
                         f"{title_field}: longer than {MAX_TITLE_CHARACTERS} characters")
    try:
        fields = status_fields(entry)
    except EntryProblem as problem:
        return FileEntry(entry.line, title, mal_id or None, None, str(problem))
    return FileEntry(entry.line, title, mal_id or None, fields, None)


def status_fields(entry: MalEntry) -> StatusFields:
    """The reading status the entry asks for (no series, client or time)."""
    raw_status = entry.text("my_status")
    status = MAL_TO_STATUS.get(" ".join(raw_status.lower().split()))
    if status is None:
        raise EntryProblem(f"my_status: {raw_status!r} is not a MAL status" if raw_status else "my_status missing")
    chapters = _whole(entry, "my_read_chapters", 0, MAX_PROGRESS)
    volumes = _whole(entry, "my_read_volumes", 0, MAX_PROGRESS)
    score = _whole(entry, "my_score", 0, 10)
    times_read = _whole(entry, "my_times_read", 0, MAX_REREAD)
    raw_priority = entry.text("my_priority")
    priority = MAL_TO_PRIORITY.get(raw_priority.lower()) if raw_priority else DEFAULT_PRIORITY
    if priority is None:
        raise EntryProblem(f"my_priority: {raw_priority!r} is not Low, Medium or High")
    start = _date(entry, "my_start_date")
    end = _date(entry, "my_finish_date")
    if ends_before_start(start, end):
        raise EntryProblem("my_finish_date is before my_start_date")
    notes = _notes(entry.text("my_comments"), entry.text("my_tags"))
    if notes is not None and len(notes) > MAX_NOTES:
        raise EntryProblem(f"my_comments and my_tags are longer than {MAX_NOTES} characters")
    return StatusFields(
        visibility="private",
        progress_type="chapters" if chapters > 0 else "volumes",
        progress=float(chapters if chapters > 0 else volumes),
        status=status,
        reread=times_read or None,
        score=float(score) if score else None,
        priority=priority,
        start=start,
        end=end,
        notes=notes,
    )


def _whole(entry: MalEntry, name: str, low: int, high: int, default: int = 0) -> int:
    text = entry.text(name)
    if not text:
        return default
    # MAL writes whole numbers; some exporters write scores as 7.0.
    number = text[:-2] if text.endswith(".0") else text
    if not (number.isascii() and number.isdigit()):
        raise EntryProblem(f"{name}: {text!r} is not a whole number")
    value = int(number)
    if not low <= value <= high:
        raise EntryProblem(f"{name}: {value} is not between {low} and {high}")
    return value


def _date(entry: MalEntry, name: str) -> str | None:
    text = entry.text(name)
    if not text or text == NO_DATE:
        return None
    match = _MAL_DATE.fullmatch(text)
    if match is None:
        raise EntryProblem(f"{name}: {text!r} is not YYYY-MM-DD")
    year, month, day = match.groups()
    if year == "0000":
        return None
    # A partial date keeps what is known: 2019-05-00 is May 2019, 2019-00-00 (or 2019-00-17) is 2019.
    value = year if month == "00" else f"{year}-{month}" if day == "00" else text
    try:
        date_range(value)
    except ValueError:
        raise EntryProblem(f"{name}: {text!r} is not a real date") from None
    return value


def _notes(comments: str, tags: str) -> str | None:
    lines = [text for text in (comments, f"{TAGS_PREFIX}{tags}" if tags else "") if text]
    return "\n".join(lines) or None


# The export.

def mal_entry(status: StatusRecord, title: str, mal_id: int | None) -> dict[str, str | int]:
    """A reading status as the children of a MAL `<manga>`."""
    chapters = status.progress_type == "chapters"
    progress = int(status.progress or 0)
    comments, tags = _split_notes(status.notes)
    score = status.score
    return {
        "manga_mangadb_id": mal_id or 0,
        "manga_title": Cdata(title),
        "manga_volumes": 0,
        "manga_chapters": 0,
        "my_id": 0,
        "my_read_volumes": 0 if chapters else progress,
        "my_read_chapters": progress if chapters else 0,
        "my_start_date": _mal_date(status.start),
        "my_finish_date": _mal_date(status.end),
        "my_scanalation_group": Cdata(""),
        "my_score": int(round(score)) if score is not None else 0,
        "my_storage": "",
        "my_retail_volumes": 0,
        "my_status": STATUS_TO_MAL.get(status.status, "Reading"),
        "my_comments": Cdata(comments),
        "my_times_read": status.reread or 0,
        "my_tags": Cdata(tags),
        "my_priority": PRIORITY_TO_MAL.get(status.priority or "", "Low"),
        "my_reread_value": "",
        "my_rereading": "NO",
        "my_discuss": "YES",
        "my_sns": "default",
        "update_on_import": 1,
    }


def _mal_date(value: str | None) -> str:
    if not value:
        return NO_DATE
    parts = value.split("-") + ["00", "00"]
    return "-".join(parts[:3])


def _split_notes(notes: str | None) -> tuple[str, str]:
    if not notes:
        return "", ""
    head, _, last = notes.rpartition("\n")
    if last.startswith(TAGS_PREFIX):
        return head, last[len(TAGS_PREFIX):]
    return notes, ""
