"""The merge engine of the list imports (storage.list_merge): what counts as a change, the
`keep`, `replace` and `greater` rules, the status order and the settled statuses."""

from __future__ import annotations

from typing import Any

import pytest

from storage.list_merge import MERGE_RULES, greater_status, keep, merge_entries, replace


def status(series_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A stored reading status with every field; `fields` override."""
    entry: dict[str, Any] = {"series_id": series_id, "visibility": "private", "progress_type": "chapters",
                             "progress": 10.0, "status": "started", "reread": None, "score": None,
                             "priority": "low", "start": None, "end": None, "notes": None}
    entry.update(fields)
    return entry


# What counts as a change.

def test_an_entry_the_list_lacks_is_added_last() -> None:
    held = [status(1), status(2)]
    merged = merge_entries(held, [status(3)], "series_id", keep)
    assert [e["series_id"] for e in merged.entries] == [1, 2, 3]
    (change,) = merged.changes
    assert (change.key, change.action, change.before, change.after) == (3, "add", None, status(3))
    assert (merged.outcome.add, merged.outcome.change, merged.outcome.kept, merged.outcome.unchanged) == (1, 0, 0, 0)


def test_an_entry_with_the_same_values_is_unchanged_whatever_the_rule() -> None:
    for rule in MERGE_RULES.values():
        merged = merge_entries([status(1)], [status(1)], "series_id", rule)
        assert [c.action for c in merged.changes] == ["unchanged"]
        assert merged.outcome.unchanged == 1 and merged.outcome.change == 0
        assert merged.entries == [status(1)]


def test_a_difference_only_in_an_ignored_field_is_unchanged() -> None:
    merged = merge_entries([status(1, last_update="then")], [status(1, last_update="now")], "series_id", replace,
                           ignored=("last_update",))
    assert [c.action for c in merged.changes] == ["unchanged"]
    assert merged.entries[0]["last_update"] == "then"


def test_an_ignored_field_is_never_named_among_the_changed_ones() -> None:
    merged = merge_entries([status(1, last_update="then")], [status(1, progress=20.0, last_update="now")],
                           "series_id", replace, ignored=("last_update",))
    (change,) = merged.changes
    assert change.action == "update" and change.changed == ("progress",)
    assert merged.entries[0]["last_update"] == "now"  # the entry is the file's, ignored field included


def test_only_the_files_fields_are_compared() -> None:
    # A field the held entry has and the file's lacks is no difference.
    merged = merge_entries([status(1, client=7)], [status(1)], "series_id", replace)
    assert [c.action for c in merged.changes] == ["unchanged"]


def test_an_update_names_the_fields_that_differ_in_the_files_order() -> None:
    incoming = status(1, score=8.0, progress=12.0, notes="good")
    merged = merge_entries([status(1)], [incoming], "series_id", replace)
    (change,) = merged.changes
    assert change.action == "update"
    assert change.changed == ("progress", "score", "notes")
    assert (change.before, change.after) == (status(1), incoming)
    assert merged.outcome.change == 1


def test_held_entries_keep_their_order_and_are_not_modified() -> None:
    held = [status(1), status(2), status(3)]
    snapshot = [dict(e) for e in held]
    merged = merge_entries(held, [status(2, progress=50.0), status(9)], "series_id", replace)
    assert [e["series_id"] for e in merged.entries] == [1, 2, 3, 9]
    assert merged.entries[1]["progress"] == 50.0
    assert held == snapshot


def test_the_outcome_counts_each_action() -> None:
    held = [status(1), status(2), status(3, status="completed")]
    incoming = [status(1), status(2, progress=99.0), status(3, status="started"), status(4)]
    merged = merge_entries(held, incoming, "series_id", greater_status)
    assert [c.action for c in merged.changes] == ["unchanged", "update", "kept", "add"]
    outcome = merged.outcome
    assert (outcome.add, outcome.change, outcome.kept, outcome.unchanged) == (1, 1, 1, 1)
    assert (outcome.unknown, outcome.refused) == ([], 0)


def test_another_key_can_be_named() -> None:
    held = [{"volume_id": 5, "item_id": "a", "count": 1}]
    merged = merge_entries(held, [{"volume_id": 5, "item_id": "b", "count": 1}], "volume_id", replace,
                           ignored=("item_id",))
    assert [c.action for c in merged.changes] == ["unchanged"]


# keep and replace.

def test_keep_leaves_a_differing_entry_as_held() -> None:
    merged = merge_entries([status(1)], [status(1, progress=99.0)], "series_id", keep)
    (change,) = merged.changes
    assert (change.action, change.before, change.after) == ("kept", status(1), status(1))
    assert merged.entries == [status(1)] and merged.outcome.kept == 1


def test_replace_takes_the_files_entry_whole() -> None:
    incoming = status(1, progress=2.0, status="planned", notes=None)
    merged = merge_entries([status(1, notes="mine")], [incoming], "series_id", replace)
    assert merged.entries == [incoming]
    assert merged.changes[0].changed == ("progress", "status", "notes")


def test_the_rules_are_named_as_the_query_names_them() -> None:
    assert MERGE_RULES == {"keep": keep, "replace": replace, "greater": greater_status}


# greater: progress.

def test_greater_takes_the_higher_progress_of_the_same_kind() -> None:
    assert greater_status(status(progress=10.0), status(progress=4.0))["progress"] == 10.0
    assert greater_status(status(progress=4.0), status(progress=10.0))["progress"] == 10.0


def test_greater_keeps_a_held_progress_of_another_kind() -> None:
    result = greater_status(status(progress_type="volumes", progress=3.0), status(progress=50.0))
    assert (result["progress_type"], result["progress"]) == ("volumes", 3.0)


def test_greater_takes_the_files_progress_of_another_kind_when_the_held_one_is_zero() -> None:
    result = greater_status(status(progress_type="volumes", progress=0.0), status(progress=50.0))
    assert (result["progress_type"], result["progress"]) == ("chapters", 50.0)


# greater: the status order.

@pytest.mark.parametrize(("held", "incoming", "expected"), [
    ("planned", "started", "started"),
    ("planned", "paused", "paused"),
    ("planned", "completed", "completed"),
    ("planned", "dropped", "dropped"),
    ("started", "completed", "completed"),
    ("started", "dropped", "dropped"),
    ("started", "paused", "paused"),
    ("paused", "started", "started"),
    ("paused", "completed", "completed"),
    # never back to planned from a status under way
    ("started", "planned", "started"),
    ("paused", "planned", "paused"),
    ("planned", "planned", "planned"),
])
def test_greater_moves_the_status_forward_only(held: str, incoming: str, expected: str) -> None:
    assert greater_status(status(status=held), status(status=incoming))["status"] == expected


@pytest.mark.parametrize("settled", ["completed", "dropped"])
@pytest.mark.parametrize("incoming", ["planned", "started", "paused", "completed", "dropped"])
def test_greater_never_moves_away_from_a_settled_status(settled: str, incoming: str) -> None:
    assert greater_status(status(status=settled), status(status=incoming))["status"] == settled


# greater: dates, rereads, score, priority, notes, visibility.

def test_greater_takes_the_earlier_start_and_the_later_finish() -> None:
    result = greater_status(status(start="2020-03-01", end="2020-06-01"), status(start="2020-01-15", end="2021-02"))
    assert (result["start"], result["end"]) == ("2020-01-15", "2021-02")


def test_greater_compares_partial_dates_as_ranges() -> None:
    # 2020 starts on January 1, before 2020-05-17; it ends on December 31, after 2020-05.
    result = greater_status(status(start="2020-05-17", end="2020-05"), status(start="2020", end="2020"))
    assert (result["start"], result["end"]) == ("2020", "2020")


def test_greater_keeps_the_held_date_on_a_tie() -> None:
    result = greater_status(status(start="2020-01", end="2020-12"), status(start="2020", end="2020"))
    assert (result["start"], result["end"]) == ("2020-01", "2020-12")


def test_greater_takes_a_date_only_one_side_has() -> None:
    assert greater_status(status(start=None, end="2020"), status(start="2019", end=None))[
        "start"] == "2019"
    assert greater_status(status(start="2019", end=None), status(start=None, end="2020"))["end"] == "2020"


def test_greater_keeps_both_held_dates_when_the_files_end_is_before_the_held_start() -> None:
    result = greater_status(status(start="2021-01-01", end=None), status(start=None, end="2020-06-01"))
    assert (result["start"], result["end"]) == ("2021-01-01", None)


def test_greater_takes_the_higher_reread_count() -> None:
    assert greater_status(status(reread=2), status(reread=1))["reread"] == 2
    assert greater_status(status(reread=1), status(reread=3))["reread"] == 3
    assert greater_status(status(reread=None), status(reread=1))["reread"] == 1
    assert greater_status(status(reread=2), status(reread=None))["reread"] == 2
    assert greater_status(status(reread=None), status(reread=None))["reread"] is None


def test_greater_takes_the_files_score_when_it_has_one() -> None:
    assert greater_status(status(score=9.0), status(score=3.0))["score"] == 3.0
    assert greater_status(status(score=9.0), status(score=None))["score"] == 9.0


def test_greater_takes_the_files_priority() -> None:
    assert greater_status(status(priority="high"), status(priority="low"))["priority"] == "low"


def test_greater_keeps_the_held_notes_unless_there_are_none() -> None:
    assert greater_status(status(notes="mine"), status(notes="theirs"))["notes"] == "mine"
    assert greater_status(status(notes=None), status(notes="theirs"))["notes"] == "theirs"
    assert greater_status(status(notes=""), status(notes="theirs"))["notes"] == "theirs"


def test_greater_keeps_the_held_visibility() -> None:
    assert greater_status(status(visibility="public"), status(visibility="private"))["visibility"] == "public"


def test_greater_takes_the_files_time_of_update_when_it_has_one() -> None:
    assert greater_status(status(last_update="then"), status(last_update="now"))["last_update"] == "now"
    assert greater_status(status(last_update="then"), status())["last_update"] == "then"


def test_greater_does_not_modify_either_entry() -> None:
    held, incoming = status(progress=1.0), status(progress=5.0, status="completed")
    greater_status(held, incoming)
    assert (held, incoming) == (status(progress=1.0), status(progress=5.0, status="completed"))


def test_greater_keeps_an_entry_that_is_already_further_on() -> None:
    held = status(progress=100.0, status="completed", reread=2, start="2019", end="2020-01-05", notes="mine")
    incoming = status(progress=40.0, status="started", reread=1, start="2019-06", end=None, notes="theirs")
    merged = merge_entries([held], [incoming], "series_id", greater_status)
    assert [c.action for c in merged.changes] == ["kept"]
    assert merged.entries == [held]
