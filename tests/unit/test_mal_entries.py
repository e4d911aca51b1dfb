"""The MyAnimeList mapping (formats.mal_entries): a MAL entry as a reading status, and a reading
status as a MAL entry."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from formats.mal_entries import (
    DEFAULT_PRIORITY,
    MAX_NOTES,
    NO_DATE,
    EntryProblem,
    mal_entry,
    read_entry,
    status_fields,
)
from formats.mal_xml import Cdata, MalEntry
from storage.records import StatusRecord
from storage.title_keys import MAX_TITLE_CHARACTERS


def mal(**values: str) -> MalEntry:
    """An entry as the XML reader gives it: every text stripped, absent elements absent."""
    return MalEntry(line=3, values={"manga_title": "Berserk", "my_status": "Reading", **values})


def fields_of(entry: MalEntry) -> dict[str, Any]:
    """The status an entry asks for, as stored (in the order the status routes store it)."""
    return {key: value for key, value in status_fields(entry).stored(0, 0, None).items()
            if key not in STORED_KEYS}


def status(**fields: Any) -> dict[str, Any]:
    stored: dict[str, Any] = {"visibility": "private", "progress_type": "volumes", "progress": 0.0,
                              "status": "started", "reread": None, "score": None, "priority": "low",
                              "start": None, "end": None, "notes": None}
    stored.update(fields)
    return stored


# What a stored status holds besides what the MAL mapping reads and writes.
STORED_KEYS: dict[str, Any] = {"series_id": 7, "client": 1, "last_update": datetime(2024, 1, 2, tzinfo=timezone.utc)}


def as_record(**fields: Any) -> StatusRecord:
    """A stored status as the session query brings it to the export."""
    return StatusRecord.of({**STORED_KEYS, **status(**fields)})


# A MAL entry -> a reading status.

@pytest.mark.parametrize(("text", "expected"), [
    ("Reading", "started"), ("Completed", "completed"), ("On-Hold", "paused"), ("On Hold", "paused"),
    ("onhold", "paused"), ("Dropped", "dropped"), ("Plan to Read", "planned"), ("PlanToRead", "planned"),
    ("plan  to\tread", "planned"), ("1", "started"), ("2", "completed"), ("3", "paused"), ("4", "dropped"),
    ("6", "planned"),
])
def test_mal_statuses_and_their_numbers_map_to_reading_statuses(text: str, expected: str) -> None:
    assert fields_of(mal(my_status=text))["status"] == expected


@pytest.mark.parametrize("text", ["5", "0", "Watching", "Plan to Watch"])
def test_an_unknown_status_is_a_problem_naming_it(text: str) -> None:
    with pytest.raises(EntryProblem, match=f"my_status: '{text}' is not a MAL status"):
        fields_of(mal(my_status=text))


def test_a_missing_status_is_a_problem() -> None:
    with pytest.raises(EntryProblem, match="my_status missing"):
        fields_of(MalEntry(line=1, values={"manga_title": "Berserk"}))


def test_an_entry_with_only_a_status_has_the_defaults() -> None:
    assert fields_of(mal()) == status(priority=DEFAULT_PRIORITY)


def test_progress_is_in_chapters_when_any_were_read_else_in_volumes() -> None:
    both = fields_of(mal(my_read_chapters="120", my_read_volumes="12"))
    assert (both["progress_type"], both["progress"]) == ("chapters", 120.0)
    volumes = fields_of(mal(my_read_chapters="0", my_read_volumes="12"))
    assert (volumes["progress_type"], volumes["progress"]) == ("volumes", 12.0)
    none = fields_of(mal())
    assert (none["progress_type"], none["progress"]) == ("volumes", 0.0)


@pytest.mark.parametrize(("text", "expected"), [("0", None), ("", None), ("7", 7.0), ("10", 10.0), ("7.0", 7.0)])
def test_score_0_is_none_and_a_whole_score_is_kept(text: str, expected: float | None) -> None:
    assert fields_of(mal(my_score=text))["score"] == expected


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("my_score", "11", "my_score: 11 is not between 0 and 10"),
    ("my_score", "7.5", "my_score: '7.5' is not a whole number"),
    ("my_score", "-1", "my_score: '-1' is not a whole number"),
    ("my_score", "٧", "my_score: '٧' is not a whole number"),  # a digit, but not an ASCII one
    ("my_read_chapters", "1000001", "my_read_chapters: 1000001 is not between 0 and 1000000"),
    ("my_read_volumes", "many", "my_read_volumes: 'many' is not a whole number"),
    ("my_times_read", "1001", "my_times_read: 1001 is not between 0 and 1000"),
])
def test_numbers_out_of_range_or_not_whole_are_problems(name: str, text: str, problem: str) -> None:
    with pytest.raises(EntryProblem) as raised:
        fields_of(mal(**{name: text}))
    assert str(raised.value) == problem


@pytest.mark.parametrize(("text", "expected"), [("0", None), ("", None), ("1", 1), ("3", 3)])
def test_times_read_is_the_reread_count_and_0_is_none(text: str, expected: int | None) -> None:
    assert fields_of(mal(my_times_read=text))["reread"] == expected


@pytest.mark.parametrize(("text", "expected"), [("Low", "low"), ("Medium", "mid"), ("High", "high"), ("HIGH", "high"),
                                                ("0", "low"), ("1", "mid"), ("2", "high"), ("", "low")])
def test_priorities_by_name_or_number_and_low_when_none(text: str, expected: str) -> None:
    assert fields_of(mal(my_priority=text))["priority"] == expected


def test_an_unknown_priority_is_a_problem() -> None:
    with pytest.raises(EntryProblem, match="my_priority: 'Urgent' is not Low, Medium or High"):
        fields_of(mal(my_priority="Urgent"))


@pytest.mark.parametrize(("text", "expected"), [
    (NO_DATE, None), ("", None), ("2019-05-17", "2019-05-17"), ("2019-05-00", "2019-05"), ("2019-00-00", "2019"),
    ("2019-00-17", "2019"), ("0000-05-17", None),
])
def test_dates_keep_what_is_known_and_0000_00_00_is_none(text: str, expected: str | None) -> None:
    fields = fields_of(mal(my_start_date=text, my_finish_date=text))
    assert (fields["start"], fields["end"]) == (expected, expected)


@pytest.mark.parametrize("text", ["2019-5-17", "17.05.2019", "2019-05", "2019-05-17 10:00"])
def test_a_date_not_written_as_mal_writes_them_is_a_problem(text: str) -> None:
    with pytest.raises(EntryProblem, match=f"my_start_date: '{text}' is not YYYY-MM-DD"):
        fields_of(mal(my_start_date=text))


@pytest.mark.parametrize("text", ["2019-02-30", "2019-13-01", "2019-13-00"])
def test_a_date_that_does_not_exist_is_a_problem(text: str) -> None:
    with pytest.raises(EntryProblem, match=f"my_finish_date: '{text}' is not a real date"):
        fields_of(mal(my_finish_date=text))


def test_a_date_in_other_digits_is_a_problem() -> None:
    with pytest.raises(EntryProblem):
        fields_of(mal(my_start_date="٢٠١٩-٠٥-١٧"))


def test_a_finish_before_the_start_is_a_problem_and_partial_dates_compare_as_ranges() -> None:
    with pytest.raises(EntryProblem, match="my_finish_date is before my_start_date"):
        fields_of(mal(my_start_date="2019-05-17", my_finish_date="2019-05-16"))
    fields = fields_of(mal(my_start_date="2019-05-17", my_finish_date="2019-05-00"))
    assert (fields["start"], fields["end"]) == ("2019-05-17", "2019-05")


def test_comments_then_tags_on_a_line_of_their_own_are_the_notes() -> None:
    assert fields_of(mal(my_comments="great", my_tags="action, dark"))["notes"] == "great\nTags: action, dark"
    assert fields_of(mal(my_tags="dark"))["notes"] == "Tags: dark"
    assert fields_of(mal(my_comments="great"))["notes"] == "great"


def test_notes_longer_than_the_limit_are_a_problem() -> None:
    assert len(fields_of(mal(my_comments="x" * MAX_NOTES))["notes"]) == MAX_NOTES
    with pytest.raises(EntryProblem, match=f"longer than {MAX_NOTES} characters"):
        fields_of(mal(my_comments="x" * (MAX_NOTES - 6), my_tags="a"))


def test_what_has_no_place_in_a_reading_status_is_not_kept() -> None:
    fields = fields_of(mal(my_rereading="YES", my_retail_volumes="3", update_on_import="1"))
    assert fields == status()


def test_the_fields_come_in_the_order_the_status_routes_store_them() -> None:
    assert list(fields_of(mal())) == ["visibility", "progress_type", "progress", "status", "reread", "score",
                                          "priority", "start", "end", "notes"]


def test_the_report_names_the_entry_by_manga_title_then_series_title() -> None:
    read = read_entry(MalEntry(line=7, values={"series_title": "Old", "my_status": "2", "manga_mangadb_id": "42"}))
    assert (read.line, read.title, read.mal_id, read.problem) == (7, "Old", 42, None)
    assert read.fields is not None and read.fields.status == "completed"
    assert read_entry(mal(series_title="Old")).title == "Berserk"


def test_an_id_of_0_or_none_is_no_id() -> None:
    assert read_entry(mal(manga_mangadb_id="0")).mal_id is None
    assert read_entry(mal()).mal_id is None


def test_an_entry_with_a_problem_is_reported_without_fields() -> None:
    read = read_entry(mal(my_score="eleven"))
    assert (read.fields, read.problem) == (None, "my_score: 'eleven' is not a whole number")


def test_a_title_longer_than_any_catalog_title_is_reported_by_its_beginning() -> None:
    read = read_entry(mal(manga_title="t" * (MAX_TITLE_CHARACTERS + 1)))
    assert read.fields is None
    assert read.title == "t" * MAX_TITLE_CHARACTERS + "…"
    assert read.problem == f"manga_title: longer than {MAX_TITLE_CHARACTERS} characters"


# A reading status -> a MAL entry.

def test_a_status_becomes_mal_values() -> None:
    exported = mal_entry(as_record(progress_type="chapters", progress=12.0, status="paused", reread=2, score=8.0, priority="mid",
                                start="2019-05-17", end="2020-01", notes="good\nTags: dark"), "Berserk", 42)
    assert exported["manga_mangadb_id"] == 42
    assert exported["manga_title"] == "Berserk" and isinstance(exported["manga_title"], Cdata)
    assert (exported["my_read_chapters"], exported["my_read_volumes"]) == (12, 0)
    assert (exported["my_status"], exported["my_times_read"], exported["my_score"]) == ("On-Hold", 2, 8)
    assert exported["my_priority"] == "Medium"
    assert (exported["my_start_date"], exported["my_finish_date"]) == ("2019-05-17", "2020-01-00")
    assert (exported["my_comments"], exported["my_tags"]) == ("good", "dark")


@pytest.mark.parametrize(("stored", "expected"), [("started", "Reading"), ("completed", "Completed"),
                                                  ("paused", "On-Hold"), ("dropped", "Dropped"),
                                                  ("planned", "Plan to Read")])
def test_each_status_has_its_mal_name(stored: str, expected: str) -> None:
    assert mal_entry(as_record(status=stored), "T", None)["my_status"] == expected


@pytest.mark.parametrize(("stored", "expected"), [("low", "Low"), ("mid", "Medium"), ("high", "High"), (None, "Low")])
def test_each_priority_has_its_mal_name(stored: str | None, expected: str) -> None:
    assert mal_entry(as_record(priority=stored), "T", None)["my_priority"] == expected


def test_what_a_status_lacks_is_written_as_mal_writes_nothing() -> None:
    exported = mal_entry(as_record(progress_type="volumes", progress=3.0), "T", None)
    assert exported["manga_mangadb_id"] == 0
    assert (exported["my_read_volumes"], exported["my_read_chapters"]) == (3, 0)
    assert (exported["my_start_date"], exported["my_finish_date"]) == (NO_DATE, NO_DATE)
    assert (exported["my_score"], exported["my_times_read"]) == (0, 0)
    assert (exported["my_comments"], exported["my_tags"]) == ("", "")


def test_a_year_is_written_with_month_and_day_00() -> None:
    assert mal_entry(as_record(start="2019"), "T", None)["my_start_date"] == "2019-00-00"


def test_notes_without_a_last_tags_line_are_all_comments() -> None:
    exported = mal_entry(as_record(notes="Tags: not last\nmore"), "T", None)
    assert (exported["my_comments"], exported["my_tags"]) == ("Tags: not last\nmore", "")
    only_tags = mal_entry(as_record(notes="Tags: a, b"), "T", None)
    assert (only_tags["my_comments"], only_tags["my_tags"]) == ("", "a, b")


@pytest.mark.parametrize("stored", [
    status(progress_type="chapters", progress=57.0, status="completed", reread=3, score=9.0, priority="high", start="2018-02-03",
           end="2019-11-30", notes="re-read it\nTags: classic"),
    status(progress_type="volumes", progress=4.0, status="dropped", start="2018", end="2018-06",
           notes="Tags: dark"),
    status(progress_type="chapters", progress=1.0, status="planned", priority="mid", notes="just comments"),
])
def test_a_status_exported_and_read_back_is_the_same_status(stored: dict[str, Any]) -> None:
    exported = mal_entry(StatusRecord.of({**STORED_KEYS, **stored}), "Berserk", 42)
    assert fields_of(MalEntry(line=1, values={name: str(value) for name, value in exported.items()})) == stored
