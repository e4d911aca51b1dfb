"""How often /metrics counts users and sessions: never a 0 that was not counted, fresh on a small
database, and at most 1% of the database's time on a large one."""

from __future__ import annotations

import math

from web.service_metrics import COUNTS_AT_MOST_EVERY_S, count_is_due


def test_there_is_a_count_to_make_before_the_first() -> None:
    assert count_is_due(math.nan, 0.0)


def test_a_cheap_count_is_made_again_after_the_floor() -> None:
    assert not count_is_due(COUNTS_AT_MOST_EVERY_S - 1, 0.01)
    assert count_is_due(COUNTS_AT_MOST_EVERY_S, 0.01)


def test_a_costly_count_waits_a_hundred_times_what_it_took() -> None:
    assert not count_is_due(99.0, 1.0)
    assert count_is_due(100.0, 1.0)
    assert not count_is_due(500.0, 6.0)
